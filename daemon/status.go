package daemon

import "github.com/vmss-emulator/vmss/arm"

func statusOf(code, display string) arm.InstanceViewStatus {
	return arm.InstanceViewStatus{Code: code, Level: "Info", DisplayStatus: display}
}

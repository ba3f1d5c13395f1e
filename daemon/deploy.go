package daemon

import (
	"log/slog"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/model"
)

// newDeployer returns the template deployment engine; nil until it exists.
func newDeployer(store *model.Store, srv *api.Server, log *slog.Logger) api.Deployer { return nil }

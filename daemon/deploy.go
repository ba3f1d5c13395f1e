package daemon

import (
	"log/slog"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/deploy"
	"github.com/vmss-emulator/vmss/model"
)

// newDeployer returns the template deployment engine, a client of srv. It
// marks deployments a previous daemon left running as failed (interrupted).
func newDeployer(store *model.Store, srv *api.Server, log *slog.Logger) api.Deployer {
	eng, err := deploy.New(deploy.Options{Handler: srv, Store: store, Logger: log})
	if err != nil {
		log.Error("template deployments are off", "err", err)
		return nil
	}
	return eng
}

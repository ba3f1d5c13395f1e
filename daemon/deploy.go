package daemon

import (
	"fmt"
	"log/slog"

	"github.com/vmss-emulator/vmss/api"
	"github.com/vmss-emulator/vmss/deploy"
	"github.com/vmss-emulator/vmss/model"
)

// newDeployer returns the template deployment engine, a client of srv. It
// marks deployments a previous daemon left running as failed (interrupted).
func newDeployer(store *model.Store, srv *api.Server, log *slog.Logger) (*deploy.Engine, error) {
	eng, err := deploy.New(deploy.Options{Handler: srv, Store: store, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("template deployments: %w", err)
	}
	return eng, nil
}

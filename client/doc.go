// Package client talks to the vmss daemon's ARM API over its unix socket. The
// vmss command line is built on it, and so are the integration tests.
//
// Typical usage:
//
//	c := client.New("/run/vmss/vmss.sock")
//	var ss arm.VirtualMachineScaleSet
//	op, err := c.Do(ctx, "PUT", c.ResourceID("default", arm.TypeScaleSet, "web"), body, &ss)
//	if err == nil {
//		err = c.Wait(ctx, op, nil)
//	}
package client

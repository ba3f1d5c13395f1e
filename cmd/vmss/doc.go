// Command vmss emulates Azure Virtual Machine Scale Sets networking on one
// Linux host. `vmss serve` runs the daemon; every other verb is a client of
// its ARM API, with verbs and flags that mirror `az vmss`, `az vm`,
// `az network` and `az deployment group`. `vmss up` runs a daemon in the
// foreground with a ready-made deployment, and `vmss cleanup` removes
// everything the emulator made, with or without a daemon.
package main

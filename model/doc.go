// Package model is the emulator's desired state: the ARM resources users put,
// the scale-set instances those resources imply, and the rules Azure applies
// when it creates and removes them.
//
// Everything here is pure: no kernel, no sockets. The API layer turns requests
// into calls on *State (PutScaleSet, Scale, DeleteInstances, ...); each call
// validates fully before it changes anything, so a rejected request leaves the
// state as it was. Store persists a State atomically (write to a temporary file,
// fsync, rename) so a crash at any moment leaves either the old or the new state
// on disk. The reconciler reads the State and drives the kernel toward it.
//
// Azure semantics implemented here (see the package tests for each row):
//   - instance ids continue from the highest ever used;
//   - VM name {set}_{id}; computer name = prefix + base-36 id padded to 6 chars;
//   - fault domain = id mod platformFaultDomainCount (default 5), update domain = id mod 5;
//   - scale-in policies Default (balance fault domains, then highest id), NewestVM, OldestVM,
//     protectFromScaleIn honoured on scale-in and ignored by delete-instances;
//   - private IPs: .0-.3 and broadcast reserved, first instance .4;
//   - overprovisioning: extras created with the asked-for instances and trimmed
//     once enough are running;
//   - limits: 100 instances per placement group, 1000 without a single placement group.
package model

// Package dashboard serves the live dashboard: one page (embedded assets, no
// build step) that shows resource groups, scale sets with their instances,
// load balancers with their backends' probe state and traffic, VNETs,
// deployments and an activity log, updated by server-sent events when the
// model, the reconciler's status or the data plane changes.
//
// Every read and every action goes through the ARM API handler, with the
// same calls the CLI makes. Actions are protected against cross-site
// requests: the page is served to loopback clients only, for a loopback Host,
// and each action must carry the per-start token embedded in the page and a
// same-origin Origin. ReadOnly refuses every action.
package dashboard

// Package deploy is the template deployment engine behind
// PUT .../resourceGroups/{rg}/providers/Microsoft.Resources/deployments/{name}.
// It implements api.Deployer.
//
// The engine is an ARM client of the daemon's own API: it sends each request
// to the in-process http.Handler (the api.Server) — PUT every resource and
// follow its Azure-AsyncOperation until it ends, GET for reference(), POST
// listKeys — so every validation and behaviour is the API's and there is no
// second path into the model. The template language itself is package
// template.
//
// A Put validates synchronously (template syntax, parameters, every resource
// body, resource types) and answers ARM errors 400 InvalidTemplate or
// InvalidTemplateDeployment without deploying anything; then it deploys in
// the background: template levels in order, the resources of a level in
// parallel, each with an operation record (provisioningState, statusCode,
// statusMessage, timestamps, duration). Records are persisted in the model's
// Deployments, so "deployment show" survives a restart; a deployment that was
// running when the daemon stopped is marked Failed by New with a message
// saying so, and running it again converges.
//
// Typical usage (the daemon does this):
//
//	eng, err := deploy.New(deploy.Options{Handler: srv, Store: store, Logger: log})
//	srv.Deployer = eng
//
// Modes: Incremental (default) puts the template's resources and leaves the
// rest of the group alone; Complete also deletes the group's resources the
// template does not name, virtual machines and scale sets first. WhatIf
// evaluates the template against the current resources and answers Azure's
// what-if shape without changing anything.
//
// Secure parameters (securestring, secureObject) never appear in stored
// records, answers, logs or error messages: every message the engine keeps
// is scrubbed of their values.
//
// Non-goals: linked and nested deployments, deployments at subscription,
// management-group or tenant scope, deployment scripts, rollback on error.
package deploy

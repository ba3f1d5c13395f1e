// Package webapp is the small web application that runs inside each scale
// set instance, the stand-in for the IIS sample of the seed template.
//
// GET / answers "Hello from <computer name> (instance <id>)\n"; GET /health
// answers 200 "ok\n"; anything else is 404. Keep-alive is on. The server is
// deliberately small: one precomputed body, no logging per request, short
// header and idle timeouts, so that a few hundred instances stay cheap.
//
// Typical usage (the vmss binary runs this inside an instance namespace):
//
//	err := webapp.Run(ctx, ":80", "web000002", "2")
//
// Non-goals: TLS, static files, configuration beyond name and id.
package webapp

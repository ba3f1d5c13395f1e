// Package expr parses and evaluates ARM template language expressions: the
// "[...]" strings of Azure Resource Manager templates.
//
// Compile turns a template string into an *Expr (a literal when it is not an
// expression); Eval evaluates it. The pure functions of the template
// language (concat, substring, uniqueString, guid, format, ...) are built in;
// functions that depend on the deployment (parameters, variables,
// copyIndex, resourceId, reference, ...) come from a Host supplied by the
// caller.
//
// Typical usage:
//
//	e, err := expr.Compile("[toLower(concat('a', 'B'))]")
//	v, err := e.Eval(ctx, host) // "ab"
//
// Values are JSON values: nil, bool, int64, float64, string, []any and
// map[string]any. Errors are *Error values with the failing sub-expression,
// or for syntax errors the position.
//
// Non-goals: user-defined functions, lambdas (filter, map, reduce), and
// Bicep syntax.
package expr

// Package template evaluates Azure Resource Manager (ARM) JSON templates so
// real quickstart templates deploy unmodified: parameters and parameter
// files, variables, the template language (package expr), copy loops,
// nested child resources, conditions, dependsOn, reference() and outputs.
//
// It deploys nothing itself. A deploy engine parses and prepares a
// template, then walks its levels, evaluating each resource's body just
// before creating it, so reference() can be answered from resources
// deployed earlier:
//
//	tpl, err := template.Parse(data)
//	params, err := template.ParseParameters(paramFile)
//	d, err := template.Prepare(ctx, tpl, template.Inputs{Params: params, Overrides: []string{"instanceCount=3"}},
//		template.Scope{ResourceGroup: "rg1", Location: "westus", Reference: getResource, ListKeys: listKeys})
//	for _, level := range d.Levels() { // resources of a level are independent
//		for _, r := range level {
//			body, err := d.Evaluate(ctx, r) // map: location, sku, properties, ...
//			// PUT r.ID with body
//		}
//	}
//	outs, err := d.Outputs(ctx)
//
// WhatIf evaluates a body without failing on resources that do not exist
// yet, for comparing with existing state.
//
// Values stay as the template writes them ("capacity": "5" stays a string);
// Int, Bool and String coerce where a consumer needs a type. Resource ids
// compare case-insensitively (SameID).
//
// Every error names its place: the JSON path, then the failing expression
// and the cause, e.g. "resources[4].sku.capacity: parameters('instanceCnt'):
// no parameter 'instanceCnt' (did you mean 'instanceCount'?)". Values of
// securestring and secureObject parameters never appear in messages or in
// ParamValue.String: they are replaced by ***.
//
// Evaluation has a budget, so a small template cannot make the evaluator
// exhaust memory: at most 800 resources and copies of 800; a function
// result of at most 4 MiB (package expr); each evaluated variable, resource
// body and output at most 16 MiB, enforced while it is built; and all of
// them together at most 64 MiB. Passing one fails with an error naming the
// place.
//
// Non-goals: deploying, Bicep, template specs, linked and nested
// deployments (refused with a clear error), user-defined functions,
// symbolic-name (languageVersion 2.0) templates.
package template

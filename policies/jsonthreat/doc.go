// Package jsonthreat is the json-threat-protection policy: request bodies
// are checked against bounds on nesting, string lengths and the sizes of
// arrays and objects, in one streaming pass that builds nothing.
package jsonthreat

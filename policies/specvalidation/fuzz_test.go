package specvalidation

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadSpec: no spec text makes loading panic; one that loads has an
// operation, and every operation's parameters are compiled.
func FuzzLoadSpec(f *testing.F) {
	pet, err := os.ReadFile(filepath.Join("testdata", "petstore.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(pet))
	for _, s := range []string{
		`{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a/{x}":{"get":{"parameters":[{"name":"x","in":"path","required":true,"schema":{"type":"integer"}}],"responses":{"200":{"description":"ok"}}}}}}`,
		"openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /n:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '#/components/schemas/N'}\n      responses: {'200': {description: ok}}\ncomponents:\n  schemas:\n    N: {type: object, properties: {next: {$ref: '#/components/schemas/N'}}, nullable: true}\n",
		"swagger: '2.0'", "openapi: 3.1.0", "[1, 2]", "", "openapi: 3.0.0\npaths: {/{a}{b}: {get: {}}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		sp, err := loadSpec(&source{text: []byte(text)})
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		if sp.ops == 0 {
			t.Fatal("a spec without operations loaded")
		}
	})
}

package expr

import (
	"os"
	"testing"
)

func testSources(t *testing.T) string {
	t.Helper()
	var all []byte
	for _, f := range []string{"funcs_test.go", "parse_test.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return string(all)
}

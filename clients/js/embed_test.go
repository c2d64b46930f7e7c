package js_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/pushfabric/pushfabric/clients/js"
)

// Demo serves the page at /demo/ and the library's own files (the ones in
// src/, byte for byte) at /demo/lib/, and has no pattern for any other
// path, which the edge then refuses.
func TestDemo(t *testing.T) {
	mux := js.Demo()
	for path, file := range map[string]string{"/demo/": "demo/index.html", "/demo/demo.js": "demo/demo.js",
		"/demo/lib/index.js": "src/index.js", "/demo/lib/client.js": "src/client.js"} {
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK || w.Body.String() != string(want) {
			t.Errorf("GET %s: %d, %d bytes; want 200 and %s", path, w.Code, w.Body.Len(), file)
		}
	}
	for _, path := range []string{"/", "/ws", "/demo.js", "/lib/index.js"} {
		if _, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, path, nil)); pattern != "" {
			t.Errorf("GET %s: pattern %q; want none", path, pattern)
		}
	}
}

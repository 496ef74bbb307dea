package openapi_test

import (
	"bytes"
	"context"
	"flag"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/clustermgr/clustermgr/pkg/openapi"
)

var update = flag.Bool("update", false, "rewrite openapi.json")

// apiComments reads the doc comments of pkg/api's types and fields.
func apiComments(t *testing.T) openapi.Comments {
	t.Helper()
	fset := token.NewFileSet()
	names, err := filepath.Glob("../api/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/clustermgr/clustermgr/pkg/api", doc.AllDecls)
	if err != nil {
		t.Fatal(err)
	}
	c := openapi.Comments{}
	clean := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, typ := range p.Types {
		c[typ.Name] = clean(typ.Doc)
		for _, spec := range typ.Decl.Specs {
			st, ok := spec.(*ast.TypeSpec).Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				text := f.Doc.Text()
				if text == "" {
					text = f.Comment.Text()
				}
				for _, n := range f.Names {
					if text != "" {
						c[typ.Name+"."+n.Name] = clean(text)
					}
				}
			}
		}
	}
	return c
}

// TestDocumentIsCurrent rebuilds the document from the route table and
// the wire types and compares it with openapi.json.
func TestDocumentIsCurrent(t *testing.T) {
	got, err := openapi.Build(openapi.Routes(), apiComments(t))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, openapi.Document()) {
		t.Fatal("openapi.json is out of date with the routes or the types of pkg/api: go test ./pkg/openapi -run TestDocumentIsCurrent -update")
	}
}

// TestDocumentIsValid loads the document as OpenAPI 3 and validates it.
func TestDocumentIsValid(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Document())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := len(doc.Paths.Map()), 0; got == want {
		t.Fatal("no paths")
	}
}

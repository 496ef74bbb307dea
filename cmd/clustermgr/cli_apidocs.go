package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/openapi"
)

// newAPIDocsCmd prints the API's description: the routes with the scope
// each needs, or the OpenAPI 3 document itself (the one every replica
// serves at /v1/openapi.json for this version).
func newAPIDocsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "api-docs",
		Short: "Show the REST API: every route with the token scope it needs, or the OpenAPI 3 document (-o json)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				_, err := out.Write(openapi.Document())
				return err
			case "table":
				return routeTable(out)
			}
			return fmt.Errorf("--output %q is not table or json", output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (the OpenAPI 3 document)")
	return cmd
}

func routeTable(out io.Writer) error {
	tw := newTable(out)
	row(tw, "METHOD", "PATH", "SCOPE", "WHAT")
	for _, r := range openapi.Routes() {
		row(tw, r.Method, r.Path, r.Scope, r.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, "\nThe OpenAPI 3 document: clustermgr api-docs -o json, or GET /v1/openapi.json on any replica.")
	return err
}

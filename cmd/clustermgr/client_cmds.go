package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/client"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
)

// defaultServer is used when neither --server nor CLUSTERMGR_SERVER is set.
const defaultServer = "http://127.0.0.1:8001"

// cliOptions are the flags every client command shares.
type cliOptions struct {
	server    string
	output    string
	timeout   time.Duration
	tokenFile string
	caFile    string
}

// addClientCommands adds the commands that talk to the REST API.
func addClientCommands(root *cobra.Command) {
	o := &cliOptions{}
	cmds := []*cobra.Command{
		newStatusCmd(o), newWhoamiCmd(o), newMembersCmd(o), newClusterCmd(o), newShardCmd(o), newNodeCmd(o), newEventsCmd(o), newOperationsCmd(o),
		newTokenCmd(o), newAuditCmd(o), newAgentsCmd(o), newSchedulesCmd(o), newWebhooksCmd(o),
	}
	cmds = append(cmds, newHACmds(o)...)
	cmds = append(cmds, newRoutingCmds(o)...)
	for _, c := range cmds {
		f := c.PersistentFlags()
		f.StringVar(&o.server, "server", "", "manager API URLs, comma separated, tried in turn (default $CLUSTERMGR_SERVER or "+defaultServer+")")
		f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
		_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
		f.DurationVar(&o.timeout, "timeout", 10*time.Second, "time limit of the whole command")
		f.StringVar(&o.caFile, "ca-file", "", "PEM CA that the servers' HTTPS certificates chain to (default $CLUSTERMGR_CA_FILE)")
		f.StringVar(&o.tokenFile, "token-file", "", "file holding the API token, mode 0600 (default $CLUSTERMGR_TOKEN_FILE; else the token is $CLUSTERMGR_TOKEN)")
		root.AddCommand(c)
	}
}

// run checks the shared flags, builds a client and runs fn under the time
// limit.
func (o *cliOptions) run(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	if o.output != "table" && o.output != "json" {
		return fmt.Errorf("--output %q is not table or json", o.output)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %v must be positive", o.timeout)
	}
	servers := o.server
	if servers == "" {
		if env, ok := os.LookupEnv("CLUSTERMGR_SERVER"); ok && env != "" {
			servers = env
		} else {
			servers = defaultServer
		}
	}
	token, err := o.token()
	if err != nil {
		return err
	}
	opts := []client.Option{client.WithRetries(10, 200*time.Millisecond), client.WithToken(token)}
	caFile := o.caFile
	if caFile == "" {
		caFile = os.Getenv("CLUSTERMGR_CA_FILE")
	}
	if caFile != "" {
		pool, err := tlsconf.LoadCA(caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		opts = append(opts, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: t}))
	}
	c, err := client.New(strings.Split(servers, ","), opts...)
	if err != nil {
		return fmt.Errorf("--server: %w", err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	return fn(ctx, c)
}

// token is the API token: from --token-file, $CLUSTERMGR_TOKEN_FILE or
// $CLUSTERMGR_TOKEN, in that order ("" when none is set: the server then
// answers 401 to all but /v1/health).
func (o *cliOptions) token() (string, error) {
	file := o.tokenFile
	if file == "" {
		file = os.Getenv("CLUSTERMGR_TOKEN_FILE")
	}
	if file != "" {
		t, err := auth.ReadTokenFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return t, nil
	}
	t := strings.TrimSpace(os.Getenv("CLUSTERMGR_TOKEN"))
	if t != "" && !auth.WellFormed(t) {
		return "", fmt.Errorf("CLUSTERMGR_TOKEN does not hold a token (cmt_ and 43 base64url characters)")
	}
	return t, nil
}

// show prints v as indented JSON with -o json, else through table.
func (o *cliOptions) show(cmd *cobra.Command, v any, table func(w io.Writer)) error {
	out := cmd.OutOrStdout()
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := newTable(out)
	table(tw)
	return tw.Flush()
}

// newTable returns the writer of the CLI's aligned tables.
func newTable(out io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(out, 0, 4, 2, ' ', 0) }

// done prints a one-line confirmation (or {} with -o json).
func (o *cliOptions) done(cmd *cobra.Command, format string, args ...any) error {
	if o.output == "json" {
		_, err := fmt.Fprintln(cmd.OutOrStdout(), "{}")
		return err
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
	return err
}

func row(w io.Writer, cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(w, strings.Join(s, "\t"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

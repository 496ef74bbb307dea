package pgctl

import (
	"context"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// MaxMessageBytes bounds one message a PostgreSQL server may send the
// manager. Nothing the manager reads comes near it (a sample's rows, a
// setting, an error); a server that announces more (hostile, or not
// PostgreSQL at all) gets its connection closed before the body is
// allocated, instead of costing the manager the announced size.
const MaxMessageBytes = 8 << 20

// BoundMessages makes the connections made with cfg refuse a server
// message longer than MaxMessageBytes.
func BoundMessages(cfg *pgconn.Config) {
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		f := pgproto3.NewFrontend(r, w)
		f.SetMaxBodyLen(MaxMessageBytes)
		return f
	}
}

// Connect connects to the server at conninfo with BoundMessages.
func Connect(ctx context.Context, conninfo string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, err
	}
	BoundMessages(&cfg.Config)
	return pgx.ConnectConfig(ctx, cfg)
}

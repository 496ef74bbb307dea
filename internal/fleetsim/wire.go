package fleetsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Type OIDs the simulator encodes.
const (
	OIDBool        = 16
	OIDInt8        = 20
	OIDInt4        = 23
	OIDText        = 25
	OIDFloat8      = 701
	OIDTextArray   = 1009
	OIDTimestamptz = 1184
)

// Col is a result column.
type Col struct {
	Name string
	OID  uint32
}

// Result is a statement's answer: columns and rows (values are bool,
// int64, float64, string, time.Time or nil for NULL), and its command
// tag ("SELECT n" when empty).
type Result struct {
	Cols []Col
	Rows [][]any
	Tag  string
}

// Error is an error a Handler answers with: PostgreSQL's SQLSTATE and
// message.
type Error struct {
	Code, Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Handler answers one statement with its parameters in text (nil: the
// statement is only being described; the columns must not depend on
// them).
type Handler func(query string, params []string) (Result, error)

// Server is one fake PostgreSQL server on a listener.
type Server struct {
	ln         net.Listener
	newHandler func(startup map[string]string) Handler // one per session
	wg         sync.WaitGroup
	mu         sync.Mutex
	conns      map[net.Conn]bool
	closed     bool
	fault      atomic.Pointer[Fault] // nil: none; read before every reply
	stop       chan struct{}         // closed by Close: ends hung sessions
	// accepted counts the connections accepted.
	accepted atomic.Uint64
}

// Accepted is how many connections the server accepted.
func (s *Server) Accepted() uint64 { return s.accepted.Load() }

// Fault is how a server misbehaves: it refuses connections (a crashed
// server, a port nothing listens on: closed at once), hangs (accepts,
// then never answers: a frozen host), or answers every message Delay
// late (a slow one).
type Fault struct {
	Refuse bool
	Hang   bool
	Delay  time.Duration
}

// SetFault makes the server misbehave as f says from now on; Fault{}
// heals it. Refuse also drops the connections open now, as a crash does.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		s.fault.Store(nil)
	} else {
		s.fault.Store(&f)
	}
	if f.Refuse {
		for c := range s.conns {
			_ = c.Close()
		}
	}
}

// misbehave applies the current fault before a reply: false when the
// connection must end.
func (s *Server) misbehave() bool {
	f := s.fault.Load()
	switch {
	case f == nil:
	case f.Refuse:
		return false
	case f.Hang:
		<-s.stop
		return false
	case f.Delay > 0:
		select {
		case <-s.stop:
			return false
		case <-time.After(f.Delay):
		}
	}
	return true
}

// Serve starts answering connections on ln with h; Close stops it.
func Serve(ln net.Listener, h Handler) *Server {
	return ServeSessions(ln, func(map[string]string) Handler { return h })
}

// ServeSessions starts answering connections on ln, each session with a
// handler of its own from newHandler, given the startup parameters (one
// that keeps state per connection); Close stops it.
func ServeSessions(ln net.Listener, newHandler func(startup map[string]string) Handler) *Server {
	s := &Server{ln: ln, newHandler: newHandler, conns: map[net.Conn]bool{}, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	return s
}

// Addr is where the server listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops listening, closes every connection and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = true
		s.accepted.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			_ = s.session(c)
		}()
	}
}

type statement struct {
	query  string
	params []uint32
}

type portal struct {
	stmt    statement
	params  []string
	formats []int16
	// res is the answer computed when the portal was described, which
	// its Execute then sends (pgx describes every portal it executes):
	// the handler runs once a statement.
	res *Result
}

// descCache keeps the last row description a session sent: a probe's
// columns and formats are the same every second.
type descCache struct {
	cols    []Col
	formats []int16
	rd      *pgproto3.RowDescription
}

func (d *descCache) get(cols []Col, formats []int16) *pgproto3.RowDescription {
	if d.rd == nil || !slices.Equal(d.cols, cols) || !slices.Equal(d.formats, formats) {
		d.cols, d.formats, d.rd = cols, slices.Clone(formats), rowDescription(cols, formats)
	}
	return d.rd
}

// session serves one connection until it ends.
func (s *Server) session(c net.Conn) error {
	if !s.misbehave() {
		return nil
	}
	b := pgproto3.NewBackend(c, c)
	params, err := startup(b, c)
	if err != nil {
		return err
	}
	h := s.newHandler(params)
	stmts := map[string]statement{}
	portals := map[string]portal{}
	var descs descCache
	var buf []byte  // the session's encoded values, reused row after row
	failed := false // an error in the extended protocol skips to Sync
	for {
		msg, err := b.Receive()
		if err != nil {
			return err
		}
		if !s.misbehave() {
			return nil
		}
		if failed {
			if _, ok := msg.(*pgproto3.Sync); !ok {
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			simpleQuery(b, h, m.String)
			b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			oids := paramOIDs(m.Query, m.ParameterOIDs)
			stmts[m.Name] = statement{query: m.Query, params: oids}
			b.Send(&pgproto3.ParseComplete{})
		case *pgproto3.Describe:
			var st statement
			formats := []int16(nil)
			if m.ObjectType == 'S' {
				var ok bool
				if st, ok = stmts[m.Name]; !ok {
					failed = sendErr(b, &Error{"26000", fmt.Sprintf("prepared statement %q does not exist", m.Name)})
					continue
				}
				b.Send(&pgproto3.ParameterDescription{ParameterOIDs: st.params})
			} else {
				p, ok := portals[m.Name]
				if !ok {
					failed = sendErr(b, &Error{"34000", fmt.Sprintf("portal %q does not exist", m.Name)})
					continue
				}
				st, formats = p.stmt, p.formats
				// A portal's answer is known once it is bound: it is
				// computed now and sent at its Execute.
				res, err := h(st.query, p.params)
				if err != nil {
					failed = sendErr(b, err)
					continue
				}
				p.res = &res
				portals[m.Name] = p
				describe(b, &descs, res.Cols, formats)
				continue
			}
			res, err := h(st.query, nil)
			if err != nil {
				failed = sendErr(b, err)
				continue
			}
			describe(b, &descs, res.Cols, formats)
		case *pgproto3.Bind:
			st, ok := stmts[m.PreparedStatement]
			if !ok {
				failed = sendErr(b, &Error{"26000", fmt.Sprintf("prepared statement %q does not exist", m.PreparedStatement)})
				continue
			}
			params := make([]string, len(m.Parameters))
			for i, p := range m.Parameters {
				if formatOf(m.ParameterFormatCodes, i) != 0 {
					failed = sendErr(b, &Error{"0A000", "the simulator takes parameters in text format only"})
					break
				}
				params[i] = string(p)
			}
			if failed {
				continue
			}
			portals[m.DestinationPortal] = portal{stmt: st, params: params, formats: m.ResultFormatCodes}
			b.Send(&pgproto3.BindComplete{})
		case *pgproto3.Execute:
			p, ok := portals[m.Portal]
			if !ok {
				failed = sendErr(b, &Error{"34000", fmt.Sprintf("portal %q does not exist", m.Portal)})
				continue
			}
			var res Result
			if p.res != nil {
				res, p.res = *p.res, nil
				portals[m.Portal] = p
			} else if res, err = h(p.stmt.query, p.params); err != nil {
				failed = sendErr(b, err)
				continue
			}
			if buf, err = sendRows(b, res, p.formats, buf[:0]); err != nil {
				failed = sendErr(b, err)
			}
		case *pgproto3.Close:
			if m.ObjectType == 'S' {
				delete(stmts, m.Name)
			} else {
				delete(portals, m.Name)
			}
			b.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			failed = false
			delete(portals, "")
			b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Flush:
		case *pgproto3.Terminate:
			return nil
		default:
			sendErr(b, &Error{"0A000", fmt.Sprintf("the simulator does not take %T", msg)})
			b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		}
		// As PostgreSQL does, answers are sent at a Sync, a Flush or the
		// end of a simple query, not message by message: a probe's batch
		// is one write.
		switch msg.(type) {
		case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
		default:
			if err := b.Flush(); err != nil {
				return err
			}
		}
	}
}

// startup answers SSL and GSS requests with "no" and a startup message
// with trust authentication.
func startup(b *pgproto3.Backend, c net.Conn) (map[string]string, error) {
	for {
		msg, err := b.ReceiveStartupMessage()
		if err != nil {
			return nil, err
		}
		var params map[string]string
		switch m := msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := c.Write([]byte{'N'}); err != nil {
				return nil, err
			}
			continue
		case *pgproto3.StartupMessage:
			params = m.Parameters
		default:
			return nil, fmt.Errorf("unexpected %T at startup", msg)
		}
		b.Send(&pgproto3.AuthenticationOk{})
		for k, v := range map[string]string{"server_version": "15.0 (fleetsim)", "server_encoding": "UTF8", "client_encoding": "UTF8",
			"DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on", "standard_conforming_strings": "on"} {
			b.Send(&pgproto3.ParameterStatus{Name: k, Value: v})
		}
		b.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: 1})
		b.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		return params, b.Flush()
	}
}

func simpleQuery(b *pgproto3.Backend, h Handler, q string) {
	if emptyQuery(q) {
		b.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	res, err := h(q, []string{})
	if err != nil {
		sendErr(b, err)
		return
	}
	if len(res.Cols) > 0 {
		b.Send(rowDescription(res.Cols, nil))
	}
	if _, err := sendRows(b, res, nil, nil); err != nil {
		sendErr(b, err)
	}
}

// emptyQuery reports whether q holds nothing but blanks, semicolons and
// line comments (pgx's Ping sends "-- ping").
func emptyQuery(q string) bool {
	for _, line := range strings.Split(q, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != ";" && !strings.HasPrefix(line, "--") {
			return false
		}
	}
	return true
}

var paramRE = regexp.MustCompile(`\$([0-9]+)`)

// paramOIDs are a statement's parameter types: as the client gave them,
// text for the rest.
func paramOIDs(q string, given []uint32) []uint32 {
	n := len(given)
	for _, m := range paramRE.FindAllStringSubmatch(q, -1) {
		if i, err := strconv.Atoi(m[1]); err == nil && i > n {
			n = i
		}
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = OIDText
		if i < len(given) && given[i] != 0 {
			out[i] = given[i]
		}
	}
	return out
}

func formatOf(codes []int16, i int) int16 {
	switch {
	case len(codes) == 0:
		return 0
	case len(codes) == 1:
		return codes[0]
	case i < len(codes):
		return codes[i]
	}
	return 0
}

// describe sends the row description of cols, or NoData when there are
// none.
func describe(b *pgproto3.Backend, d *descCache, cols []Col, formats []int16) {
	if len(cols) == 0 {
		b.Send(&pgproto3.NoData{})
		return
	}
	b.Send(d.get(cols, formats))
}

func rowDescription(cols []Col, formats []int16) *pgproto3.RowDescription {
	rd := &pgproto3.RowDescription{}
	for i, c := range cols {
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c.Name), DataTypeOID: c.OID, DataTypeSize: -1, TypeModifier: -1, Format: formatOf(formats, i)})
	}
	return rd
}

// sendRows sends res's rows and its command tag, encoding the values into
// buf, which it returns for the next statement (Send copies a message
// into the backend's own buffer).
func sendRows(b *pgproto3.Backend, res Result, formats []int16, buf []byte) ([]byte, error) {
	var ends []int
	var dr pgproto3.DataRow
	for _, row := range res.Rows {
		if len(row) != len(res.Cols) {
			return buf, fmt.Errorf("row of %d values for %d columns", len(row), len(res.Cols))
		}
		buf, ends = buf[:0], ends[:0]
		for i, v := range row {
			if v == nil {
				ends = append(ends, -1) // NULL
				continue
			}
			var err error
			if buf, err = appendValue(buf, v, res.Cols[i].OID, formatOf(formats, i)); err != nil {
				return buf, fmt.Errorf("column %s: %w", res.Cols[i].Name, err)
			}
			ends = append(ends, len(buf))
		}
		dr.Values = dr.Values[:0]
		start := 0
		for _, end := range ends {
			if end < 0 {
				dr.Values = append(dr.Values, nil)
				continue
			}
			dr.Values = append(dr.Values, buf[start:end:end])
			start = end
		}
		b.Send(&dr)
	}
	tag := res.Tag
	if tag == "" {
		tag = "SELECT " + strconv.Itoa(len(res.Rows))
	}
	b.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	return buf, nil
}

// pgEpoch is where PostgreSQL's binary timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// appendValue appends v, not nil, as a value of type oid in format (0
// text, 1 binary) to out.
func appendValue(out []byte, v any, oid uint32, format int16) ([]byte, error) {
	bin := format == 1
	switch x := v.(type) {
	case bool:
		switch {
		case bin && x:
			return append(out, 1), nil
		case bin:
			return append(out, 0), nil
		case x:
			return append(out, 't'), nil
		}
		return append(out, 'f'), nil
	case int64:
		switch {
		case !bin:
			return strconv.AppendInt(out, x, 10), nil
		case oid == OIDInt4:
			return binary.BigEndian.AppendUint32(out, uint32(int32(x))), nil
		case oid == OIDInt8:
			return binary.BigEndian.AppendUint64(out, uint64(x)), nil
		case oid == OIDFloat8:
			return binary.BigEndian.AppendUint64(out, math.Float64bits(float64(x))), nil
		}
	case float64:
		if !bin {
			return strconv.AppendFloat(out, x, 'g', -1, 64), nil
		}
		if oid == OIDFloat8 {
			return binary.BigEndian.AppendUint64(out, math.Float64bits(x)), nil
		}
	case string:
		if !bin || oid == OIDText {
			return append(out, x...), nil
		}
	case []string:
		if oid != OIDTextArray {
			break
		}
		if !bin {
			out = append(out, '{')
			for i, e := range x {
				if i > 0 {
					out = append(out, ',')
				}
				out = append(out, '"')
				out = append(out, strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(e)...)
				out = append(out, '"')
			}
			return append(out, '}'), nil
		}
		// ndim, has nulls, element type; then the dimension and the
		// elements, each with its length.
		ndim := uint32(0)
		if len(x) > 0 {
			ndim = 1
		}
		out = binary.BigEndian.AppendUint32(out, ndim)
		out = binary.BigEndian.AppendUint32(out, 0)
		out = binary.BigEndian.AppendUint32(out, OIDText)
		if len(x) == 0 {
			return out, nil
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(x)))
		out = binary.BigEndian.AppendUint32(out, 1)
		for _, e := range x {
			out = binary.BigEndian.AppendUint32(out, uint32(len(e)))
			out = append(out, e...)
		}
		return out, nil
	case time.Time:
		if !bin {
			return append(x.UTC().AppendFormat(out, "2006-01-02 15:04:05.999999"), "+00"...), nil
		}
		if oid == OIDTimestamptz {
			return binary.BigEndian.AppendUint64(out, uint64(x.Sub(pgEpoch).Microseconds())), nil
		}
	}
	return out, fmt.Errorf("cannot encode %T as type %d in format %d", v, oid, format)
}

// sendErr answers err as an ErrorResponse and reports true (the extended
// protocol then skips to Sync).
func sendErr(b *pgproto3.Backend, err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: "XX000", Message: err.Error()}
	}
	b.Send(&pgproto3.ErrorResponse{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: e.Code, Message: e.Message})
	return true
}

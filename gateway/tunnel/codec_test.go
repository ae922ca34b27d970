package tunnel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

func validHeader() *causewayv1.StreamHeader {
	return &causewayv1.StreamHeader{
		Version:       HeaderVersion,
		Namespace:     "demo",
		Service:       "echo",
		Port:          8080,
		Protocol:      causewayv1.Protocol_PROTOCOL_TCP,
		SourceCluster: "west",
		SourceAddress: "127.0.0.1:5555",
	}
}

func frame(body []byte) []byte {
	b := make([]byte, 2, 2+len(body))
	binary.BigEndian.PutUint16(b, uint16(len(body)))
	return append(b, body...)
}

func TestHeaderRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := validHeader()
	require.NoError(t, WriteFrame(&buf, in))
	// Payload bytes after the header must stay unread.
	buf.WriteString("GET / HTTP/1.1\r\n")
	out, err := ReadHeader(&buf, DefaultMaxHeaderSize)
	require.NoError(t, err)
	require.True(t, proto.Equal(in, out), "got %v", out)
	require.Equal(t, "GET / HTTP/1.1\r\n", buf.String())
}

func TestResponseRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := &causewayv1.StreamResponse{Code: causewayv1.StreamCode_STREAM_CODE_NO_ENDPOINTS, Message: "no ready endpoint"}
	require.NoError(t, WriteFrame(&buf, in))
	out, err := ReadResponse(&buf, 0)
	require.NoError(t, err)
	require.True(t, proto.Equal(in, out))
}

func TestReadHeaderErrors(t *testing.T) {
	good, err := proto.Marshal(validHeader())
	require.NoError(t, err)
	mutate := func(f func(h *causewayv1.StreamHeader)) []byte {
		h := validHeader()
		f(h)
		b, err := proto.Marshal(h)
		require.NoError(t, err)
		return frame(b)
	}
	tests := []struct {
		name  string
		input []byte
		limit int
		want  error
	}{
		{name: "empty stream", input: nil, want: io.EOF},
		{name: "half a length prefix", input: []byte{0x01}, want: io.ErrUnexpectedEOF},
		{name: "truncated body", input: frame(good)[:len(good)], want: io.ErrUnexpectedEOF},
		{name: "over the limit", input: frame(good), limit: len(good) - 1, want: ErrFrameTooLarge},
		{name: "declared 64KiB, default limit", input: []byte{0xff, 0xff}, limit: DefaultMaxHeaderSize, want: ErrFrameTooLarge},
		{name: "garbage protobuf", input: frame([]byte{0xff, 0xff, 0xff, 0xff}), want: ErrMalformedFrame},
		{name: "empty header", input: frame(nil), want: ErrInvalidHeader},
		{name: "wrong version", input: mutate(func(h *causewayv1.StreamHeader) { h.Version = 2 }), want: ErrInvalidHeader},
		{name: "bad namespace", input: mutate(func(h *causewayv1.StreamHeader) { h.Namespace = "Demo/../x" }), want: ErrInvalidHeader},
		{name: "long service", input: mutate(func(h *causewayv1.StreamHeader) { h.Service = strings.Repeat("a", 64) }), want: ErrInvalidHeader},
		{name: "port zero", input: mutate(func(h *causewayv1.StreamHeader) { h.Port = 0 }), want: ErrInvalidHeader},
		{name: "port too big", input: mutate(func(h *causewayv1.StreamHeader) { h.Port = 70000 }), want: ErrInvalidHeader},
		{name: "udp", input: mutate(func(h *causewayv1.StreamHeader) { h.Protocol = causewayv1.Protocol_PROTOCOL_UDP }), want: ErrInvalidHeader},
		{name: "no source cluster", input: mutate(func(h *causewayv1.StreamHeader) { h.SourceCluster = "" }), want: ErrInvalidHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = DefaultMaxHeaderSize
			}
			h, err := ReadHeader(bytes.NewReader(tc.input), limit)
			require.Nil(t, h)
			require.Error(t, err)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
}

func TestOversizedFrameIsNotRead(t *testing.T) {
	// A hostile peer declares a large frame; the reader must stop after the
	// prefix and leave the body unread instead of buffering it.
	r := bytes.NewReader(append([]byte{0x40, 0x00}, make([]byte, 0x4000)...))
	_, err := ReadHeader(r, 1024)
	require.ErrorIs(t, err, ErrFrameTooLarge)
	require.Equal(t, 0x4000, r.Len())
}

func TestWriteFrameTooLarge(t *testing.T) {
	h := validHeader()
	h.Traceparent = strings.Repeat("x", MaxFrameSize)
	require.ErrorIs(t, WriteFrame(io.Discard, h), ErrFrameTooLarge)
}

func TestResponseWithoutCode(t *testing.T) {
	_, err := ReadResponse(bytes.NewReader(frame(nil)), 0)
	require.ErrorIs(t, err, ErrMalformedFrame)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzReadHeader feeds arbitrary bytes, as a hostile peer's stream would,
// to the header decoder under a small limit. It must never panic, never
// read past the frame (prefix + at most limit bytes), and only return
// headers that validate and survive a re-encode.
func FuzzReadHeader(f *testing.F) {
	good, err := proto.Marshal(validHeader())
	require.NoError(f, err)
	mutated := func(m func(h *causewayv1.StreamHeader)) []byte {
		h := validHeader()
		m(h)
		b, err := proto.Marshal(h)
		require.NoError(f, err)
		return frame(b)
	}
	seeds := [][]byte{
		frame(good),
		append(frame(good), "GET / HTTP/1.1\r\n"...), // payload after the header
		{},           // nothing
		{0x01},       // half a prefix
		{0xff, 0xff}, // oversize prefix, no body
		append([]byte{0x10, 0x01}, make([]byte, 0x1001)...),                // one byte over the limit
		frame(good)[:len(good)/2],                                          // truncated body
		frame([]byte{0xff, 0xff, 0xff, 0xff}),                              // garbage protobuf
		frame([]byte{0x0a, 0x80}),                                          // truncated varint tag
		frame(nil),                                                         // empty header
		mutated(func(h *causewayv1.StreamHeader) { h.Version = 2 }),        // wrong version
		mutated(func(h *causewayv1.StreamHeader) { h.Service = "E/../x" }), // bad label
		mutated(func(h *causewayv1.StreamHeader) { h.Namespace = strings.Repeat("a", 64) }),
		mutated(func(h *causewayv1.StreamHeader) { h.Port = 1 << 20 }),
		mutated(func(h *causewayv1.StreamHeader) { h.Protocol = causewayv1.Protocol_PROTOCOL_UDP }),
		mutated(func(h *causewayv1.StreamHeader) { h.SourceCluster = "" }),
		append(frame(good[:0:0]), good...), // a zero-length frame followed by bytes
	}
	for _, s := range seeds {
		f.Add(s)
	}
	const limit = DefaultMaxHeaderSize
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		h, err := ReadHeader(r, limit)
		if r.n > prefixLen+limit {
			t.Fatalf("read %d bytes, more than a frame of the limit", r.n)
		}
		if err != nil {
			if h != nil {
				t.Fatalf("returned a header with error %v", err)
			}
			if !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrMalformedFrame) &&
				!errors.Is(err, ErrInvalidHeader) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		if verr := ValidateHeader(h); verr != nil {
			t.Fatalf("accepted an invalid header %v: %v", h, verr)
		}
		if want := prefixLen + int(binary.BigEndian.Uint16(data)); r.n != want {
			t.Fatalf("consumed %d bytes, frame is %d", r.n, want)
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, h); err != nil {
			t.Fatalf("re-encode accepted header: %v", err)
		}
		again, err := ReadHeader(&buf, MaxFrameSize)
		if err != nil || !proto.Equal(h, again) {
			t.Fatalf("re-encoded header does not round-trip: %v", err)
		}
	})
}

package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	causewayv1 "github.com/causeway-mesh/causeway/api/causeway/v1"
	"github.com/causeway-mesh/causeway/internal/lib/names"
	"google.golang.org/protobuf/proto"
)

// ALPN is the TLS application protocol of the tunnel.
const ALPN = "causeway/1"

// HeaderVersion is the StreamHeader version this package writes and accepts.
const HeaderVersion = 1

const (
	// DefaultMaxHeaderSize is the default cap on a frame body, in bytes.
	DefaultMaxHeaderSize = 4096
	// MaxFrameSize is the largest body the 2-byte length prefix can describe.
	MaxFrameSize = 1<<16 - 1
	prefixLen    = 2
)

// Sentinel errors callers branch on (with errors.Is).
var (
	ErrFrameTooLarge  = errors.New("tunnel: frame exceeds size limit")
	ErrMalformedFrame = errors.New("tunnel: malformed frame")
	ErrInvalidHeader  = errors.New("tunnel: invalid stream header")
)

// WriteFrame writes m as one length-prefixed frame in a single Write call.
func WriteFrame(w io.Writer, m proto.Message) error {
	size := proto.Size(m)
	if size > MaxFrameSize {
		return fmt.Errorf("write frame of %d bytes: %w", size, ErrFrameTooLarge)
	}
	buf := make([]byte, prefixLen, prefixLen+size)
	binary.BigEndian.PutUint16(buf, uint16(size))
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return fmt.Errorf("marshal frame: %w", err)
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame of at most limit body bytes into m. If limit is
// zero or above MaxFrameSize, MaxFrameSize applies.
func ReadFrame(r io.Reader, m proto.Message, limit int) error {
	if limit <= 0 || limit > MaxFrameSize {
		limit = MaxFrameSize
	}
	var prefix [prefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return fmt.Errorf("read frame length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(prefix[:]))
	if n > limit {
		return fmt.Errorf("frame of %d bytes, limit %d: %w", n, limit, ErrFrameTooLarge)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read frame body (%d bytes): %w", n, err)
	}
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedFrame, err)
	}
	return nil
}

// ReadHeader reads and validates a StreamHeader of at most limit bytes.
func ReadHeader(r io.Reader, limit int) (*causewayv1.StreamHeader, error) {
	h := &causewayv1.StreamHeader{}
	if err := ReadFrame(r, h, limit); err != nil {
		return nil, err
	}
	if err := ValidateHeader(h); err != nil {
		return nil, err
	}
	return h, nil
}

// ValidateHeader checks the fields an ingress gateway relies on.
func ValidateHeader(h *causewayv1.StreamHeader) error {
	switch {
	case h.GetVersion() != HeaderVersion:
		return fmt.Errorf("%w: version %d, want %d", ErrInvalidHeader, h.GetVersion(), HeaderVersion)
	case !names.IsDNSLabel(h.GetNamespace()):
		return fmt.Errorf("%w: namespace %q is not a DNS label", ErrInvalidHeader, h.GetNamespace())
	case !names.IsDNSLabel(h.GetService()):
		return fmt.Errorf("%w: service %q is not a DNS label", ErrInvalidHeader, h.GetService())
	case h.GetPort() == 0 || h.GetPort() > 65535:
		return fmt.Errorf("%w: port %d out of range", ErrInvalidHeader, h.GetPort())
	case h.GetProtocol() != causewayv1.Protocol_PROTOCOL_TCP:
		return fmt.Errorf("%w: protocol %s not supported", ErrInvalidHeader, h.GetProtocol())
	case !names.IsDNSLabel(h.GetSourceCluster()):
		return fmt.Errorf("%w: source cluster %q is not a DNS label", ErrInvalidHeader, h.GetSourceCluster())
	}
	return nil
}

// ReadResponse reads a StreamResponse frame.
func ReadResponse(r io.Reader, limit int) (*causewayv1.StreamResponse, error) {
	resp := &causewayv1.StreamResponse{}
	if err := ReadFrame(r, resp, limit); err != nil {
		return nil, err
	}
	if resp.GetCode() == causewayv1.StreamCode_STREAM_CODE_UNSPECIFIED {
		return nil, fmt.Errorf("%w: response without code", ErrMalformedFrame)
	}
	return resp, nil
}

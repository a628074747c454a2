package grpcserver

import (
	"bytes"
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// grpc-go answers INTERNAL when a request does not decode (invalid UTF-8 in a
// string field, truncated bytes), before any interceptor runs. That is a
// client mistake, and a caller without a token should hear UNAUTHENTICATED
// first. So the codec below lets such a request through as an empty message
// carrying a marker (an unknown field with the status to answer), and
// rejectUndecodable turns the marker into that status after authentication
// and before any handler.
//
// grpc-go also decodes a request before any interceptor, so an anonymous
// caller could make the server build whatever the bytes describe: 4 MiB of
// empty nested messages (two bytes each) decode into two million objects,
// about 200 MiB. The codec counts a request's nested messages and list
// entries on the wire first and, past a bound, decodes nothing and marks the
// request RESOURCE_EXHAUSTED.

// undecodableField is the field number of the marker: the largest legal one,
// far from any field mlgate's messages use.
const undecodableField = protowire.Number(protowire.MaxValidNumber)

// undecodablePrefix starts a marker's payload; the status code (one byte) and
// the message follow.
var undecodablePrefix = []byte("mlgate: refused request: ")

// DefaultMaxRequestElements bounds the nested messages and repeated string or
// bytes entries of one request when Config leaves it 0.
const DefaultMaxRequestElements = 4096

type lenientCodec struct {
	inner       encoding.CodecV2
	maxElements int
}

func newLenientCodec(maxElements int) lenientCodec {
	return lenientCodec{inner: encoding.GetCodecV2(protocodec.Name), maxElements: maxElements}
}

func (c lenientCodec) Name() string { return c.inner.Name() }

func (c lenientCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.inner.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	raw := buf.ReadOnlyData()
	budget := c.maxElements
	if !withinBudget(raw, m.ProtoReflect().Descriptor(), &budget, 0) {
		refuse(m, codes.ResourceExhausted, fmt.Sprintf("request too large: it holds more than %d nested messages and list entries", c.maxElements))
		return nil
	}
	if err := proto.Unmarshal(raw, m); err != nil {
		reason := err.Error()
		if len(reason) > 200 {
			reason = reason[:200] + "…"
		}
		refuse(m, codes.InvalidArgument, "request message could not be decoded: "+reason)
		return nil
	}
	// A client may not forge the marker: unknown fields are dropped from
	// requests that carry one (handlers never read them anyway).
	if _, _, forged := refusalOf(m); forged {
		m.ProtoReflect().SetUnknown(nil)
	}
	return nil
}

// refuse empties m and marks it with the status to answer.
func refuse(m proto.Message, code codes.Code, msg string) {
	proto.Reset(m)
	payload := append(append(append([]byte{}, undecodablePrefix...), byte(code)), msg...)
	marker := protowire.AppendTag(nil, undecodableField, protowire.BytesType)
	m.ProtoReflect().SetUnknown(protowire.AppendBytes(marker, payload))
}

// withinBudget walks the wire form of a message of type md and spends one unit
// of budget on every nested message (map entries included) and every entry of
// a repeated string or bytes field: the values whose decoding allocates far
// more than their bytes on the wire. Packed scalars cost nothing. It reports
// false once the budget is spent; malformed bytes are left to the decoder.
func withinBudget(b []byte, md protoreflect.MessageDescriptor, budget *int, depth int) bool {
	if depth > 64 { // deeper than any mlgate message; the decoder refuses it
		return true
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return true
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return true
		}
		value := b[:n]
		b = b[n:]
		fd := fields.ByNumber(num)
		if fd == nil || typ != protowire.BytesType {
			continue
		}
		switch {
		case fd.Message() != nil:
			if *budget--; *budget < 0 {
				return false
			}
			inner, _ := protowire.ConsumeBytes(value)
			if !withinBudget(inner, fd.Message(), budget, depth+1) {
				return false
			}
		case fd.IsList() && (fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind):
			if *budget--; *budget < 0 {
				return false
			}
		}
	}
	return true
}

// refusalOf returns the status a lenientCodec recorded in req, if any.
func refusalOf(req any) (codes.Code, string, bool) {
	m, ok := req.(proto.Message)
	if !ok {
		return 0, "", false
	}
	unknown := m.ProtoReflect().GetUnknown()
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeTag(unknown)
		if n < 0 {
			return 0, "", false
		}
		unknown = unknown[n:]
		if num == undecodableField && typ == protowire.BytesType {
			payload, m := protowire.ConsumeBytes(unknown)
			if m >= 0 && len(payload) > len(undecodablePrefix) && bytes.HasPrefix(payload, undecodablePrefix) {
				return codes.Code(payload[len(undecodablePrefix)]), string(payload[len(undecodablePrefix)+1:]), true
			}
		}
		skip := protowire.ConsumeFieldValue(num, typ, unknown)
		if skip < 0 {
			return 0, "", false
		}
		unknown = unknown[skip:]
	}
	return 0, "", false
}

func rejectUndecodable(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if code, msg, refused := refusalOf(req); refused {
		return nil, status.Error(code, msg)
	}
	return handler(ctx, req)
}

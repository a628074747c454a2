package grpcserver

import (
	"bytes"
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// grpc-go answers INTERNAL when a request does not decode (invalid UTF-8 in a
// string field, truncated bytes), before any interceptor runs. That is a
// client mistake, and a caller without a token should hear UNAUTHENTICATED
// first. So the codec below lets such a request through as an empty message
// carrying a marker (an unknown field with the decode error), and
// rejectUndecodable turns the marker into INVALID_ARGUMENT after
// authentication and before any handler.

// undecodableField is the field number of the marker: the largest legal one,
// far from any field mlgate's messages use.
const undecodableField = protowire.Number(protowire.MaxValidNumber)

var undecodablePrefix = []byte("mlgate: undecodable request: ")

type lenientCodec struct{ inner encoding.CodecV2 }

func newLenientCodec() lenientCodec {
	return lenientCodec{inner: encoding.GetCodecV2(protocodec.Name)}
}

func (c lenientCodec) Name() string { return c.inner.Name() }

func (c lenientCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.inner.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if !ok {
		return err
	}
	if err == nil {
		// A client may not forge the marker: unknown fields are dropped
		// from requests that carry one (handlers never read them anyway).
		if _, forged := decodeError(m); forged {
			m.ProtoReflect().SetUnknown(nil)
		}
		return nil
	}
	proto.Reset(m)
	reason := err.Error()
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	marker := protowire.AppendTag(nil, undecodableField, protowire.BytesType)
	marker = protowire.AppendBytes(marker, append(append([]byte{}, undecodablePrefix...), reason...))
	m.ProtoReflect().SetUnknown(marker)
	return nil
}

// decodeError returns the decode error a lenientCodec recorded in req, if any.
func decodeError(req any) (string, bool) {
	m, ok := req.(proto.Message)
	if !ok {
		return "", false
	}
	unknown := m.ProtoReflect().GetUnknown()
	for len(unknown) > 0 {
		num, typ, n := protowire.ConsumeTag(unknown)
		if n < 0 {
			return "", false
		}
		unknown = unknown[n:]
		if num == undecodableField && typ == protowire.BytesType {
			payload, m := protowire.ConsumeBytes(unknown)
			if m >= 0 && bytes.HasPrefix(payload, undecodablePrefix) {
				return string(payload[len(undecodablePrefix):]), true
			}
		}
		skip := protowire.ConsumeFieldValue(num, typ, unknown)
		if skip < 0 {
			return "", false
		}
		unknown = unknown[skip:]
	}
	return "", false
}

func rejectUndecodable(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if reason, bad := decodeError(req); bad {
		return nil, status.Error(codes.InvalidArgument, "request message could not be decoded: "+reason)
	}
	return handler(ctx, req)
}

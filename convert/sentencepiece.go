package convert

import (
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrTokenizer is wrapped by errors about a malformed tokenizer file.
var ErrTokenizer = errors.New("malformed tokenizer")

// PieceType is SentencePiece's ModelProto.SentencePiece.Type.
type PieceType int32

// SentencePiece piece types, with their protobuf enum values. They are
// also the GGUF token types llama.cpp writes for them.
const (
	PieceNormal      PieceType = 1
	PieceUnknown     PieceType = 2
	PieceControl     PieceType = 3
	PieceUserDefined PieceType = 4
	PieceUnused      PieceType = 5
	PieceByte        PieceType = 6
)

// Piece is one vocabulary entry of a SentencePiece model.
type Piece struct {
	Text  string
	Score float32
	Type  PieceType
}

// SPModel is the part of a SentencePiece ModelProto a converter needs.
type SPModel struct {
	Pieces []Piece
	// From TrainerSpec (zero when absent): 1 unigram, 2 BPE, 3 word, 4 char.
	ModelType    int32
	ByteFallback bool
	// From NormalizerSpec; proto defaults (true) when absent.
	AddDummyPrefix         bool
	RemoveExtraWhitespaces bool
}

// Field numbers of sentencepiece_model.proto.
const (
	fieldModelPieces     = 1
	fieldModelTrainer    = 2
	fieldModelNormalizer = 3

	fieldPieceText  = 1
	fieldPieceScore = 2
	fieldPieceType  = 3

	fieldTrainerModelType    = 3
	fieldTrainerByteFallback = 35

	fieldNormAddDummyPrefix = 3
	fieldNormRemoveExtraWS  = 4
)

// ParseSentencePiece decodes a serialized SentencePiece ModelProto
// (tokenizer.model). Unknown fields are skipped, as protobuf requires.
func ParseSentencePiece(b []byte) (*SPModel, error) {
	m := &SPModel{AddDummyPrefix: true, RemoveExtraWhitespaces: true}
	err := walk(b, 0, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, off int) error {
		switch {
		case num == fieldModelPieces && typ == protowire.BytesType:
			p, err := parsePiece(v, off)
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(m.Pieces), err)
			}
			m.Pieces = append(m.Pieces, p)
		case num == fieldModelTrainer && typ == protowire.BytesType:
			return walk(v, off, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64, _ int) error {
				switch {
				case num == fieldTrainerModelType && typ == protowire.VarintType:
					m.ModelType = int32(x)
				case num == fieldTrainerByteFallback && typ == protowire.VarintType:
					m.ByteFallback = x != 0
				}
				return nil
			})
		case num == fieldModelNormalizer && typ == protowire.BytesType:
			return walk(v, off, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64, _ int) error {
				switch {
				case num == fieldNormAddDummyPrefix && typ == protowire.VarintType:
					m.AddDummyPrefix = x != 0
				case num == fieldNormRemoveExtraWS && typ == protowire.VarintType:
					m.RemoveExtraWhitespaces = x != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(m.Pieces) == 0 {
		return nil, fmt.Errorf("%w: SentencePiece model has no pieces", ErrTokenizer)
	}
	return m, nil
}

func parsePiece(b []byte, base int) (Piece, error) {
	p := Piece{Type: PieceNormal}
	err := walk(b, base, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, off int) error {
		switch {
		case num == fieldPieceText && typ == protowire.BytesType:
			p.Text = string(v)
		case num == fieldPieceScore && typ == protowire.Fixed32Type:
			p.Score = math.Float32frombits(uint32(x))
		case num == fieldPieceType && typ == protowire.VarintType:
			t := PieceType(int32(x))
			if t < PieceNormal || t > PieceByte {
				return fmt.Errorf("%w: unknown piece type %d at offset %d", ErrTokenizer, int32(x), off)
			}
			p.Type = t
		}
		return nil
	})
	return p, err
}

// walk calls fn for each field of the message in b. For length-delimited
// fields v is the payload; for numeric ones x is the value. off is the
// field's absolute offset (base + position), for errors.
func walk(b []byte, base int, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64, off int) error) error {
	pos := 0
	for pos < len(b) {
		off := base + pos
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return fmt.Errorf("%w: bad field tag at offset %d: %v", ErrTokenizer, off, protowire.ParseError(n))
		}
		pos += n
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b[pos:])
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b[pos:])
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b[pos:])
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b[pos:])
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[pos:])
		}
		if n < 0 {
			return fmt.Errorf("%w: bad value of field %d at offset %d: %v", ErrTokenizer, num, off, protowire.ParseError(n))
		}
		valueOff := base + pos
		if typ == protowire.BytesType {
			valueOff += n - len(v) // skip the length prefix
		}
		if err := fn(num, typ, v, x, valueOff); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// EncodeSentencePiece serializes m as a ModelProto (pieces, trainer spec
// model_type and byte_fallback, normalizer spec flags), for synthetic test
// checkpoints.
func EncodeSentencePiece(m *SPModel) []byte {
	var out []byte
	for _, p := range m.Pieces {
		var pb []byte
		pb = protowire.AppendTag(pb, fieldPieceText, protowire.BytesType)
		pb = protowire.AppendString(pb, p.Text)
		pb = protowire.AppendTag(pb, fieldPieceScore, protowire.Fixed32Type)
		pb = protowire.AppendFixed32(pb, math.Float32bits(p.Score))
		if p.Type != PieceNormal && p.Type != 0 { // 0: unset, NORMAL by default
			pb = protowire.AppendTag(pb, fieldPieceType, protowire.VarintType)
			pb = protowire.AppendVarint(pb, uint64(p.Type))
		}
		out = protowire.AppendTag(out, fieldModelPieces, protowire.BytesType)
		out = protowire.AppendBytes(out, pb)
	}
	var tb []byte
	if m.ModelType != 0 {
		tb = protowire.AppendTag(tb, fieldTrainerModelType, protowire.VarintType)
		tb = protowire.AppendVarint(tb, uint64(m.ModelType))
	}
	tb = protowire.AppendTag(tb, fieldTrainerByteFallback, protowire.VarintType)
	tb = protowire.AppendVarint(tb, protowire.EncodeBool(m.ByteFallback))
	out = protowire.AppendTag(out, fieldModelTrainer, protowire.BytesType)
	out = protowire.AppendBytes(out, tb)
	var nb []byte
	nb = protowire.AppendTag(nb, fieldNormAddDummyPrefix, protowire.VarintType)
	nb = protowire.AppendVarint(nb, protowire.EncodeBool(m.AddDummyPrefix))
	nb = protowire.AppendTag(nb, fieldNormRemoveExtraWS, protowire.VarintType)
	nb = protowire.AppendVarint(nb, protowire.EncodeBool(m.RemoveExtraWhitespaces))
	out = protowire.AppendTag(out, fieldModelNormalizer, protowire.BytesType)
	out = protowire.AppendBytes(out, nb)
	return out
}

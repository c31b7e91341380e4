package pytorch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrFormat is wrapped by every error about a malformed or refused
// checkpoint.
var ErrFormat = errors.New("malformed PyTorch checkpoint")

// allowedGlobals are the only globals a checkpoint may name: what
// torch.save writes for a state dict of tensors. Anything else (os.system,
// builtins.eval, a model class) is refused before it could matter; this
// reader never calls anything, it only recognises these names.
var allowedGlobals = map[string]bool{
	"torch._utils._rebuild_tensor_v2": true,
	"collections.OrderedDict":         true,
}

// storageDTypes maps torch's legacy storage classes to safetensors dtype
// names (all allowed as globals).
var storageDTypes = map[string]string{
	"torch.FloatStorage":    "F32",
	"torch.HalfStorage":     "F16",
	"torch.BFloat16Storage": "BF16",
	"torch.DoubleStorage":   "F64",
	"torch.LongStorage":     "I64",
	"torch.IntStorage":      "I32",
	"torch.ShortStorage":    "I16",
	"torch.CharStorage":     "I8",
	"torch.ByteStorage":     "U8",
	"torch.BoolStorage":     "BOOL",
}

// Pickle values: the few kinds a state dict is made of.
type (
	pyGlobal struct{ module, name string }
	pyTuple  []any
	pyList   []any
	// pyDict keeps insertion order, as Python's dict does (it decides the
	// tensor order of the output).
	pyDict struct {
		keys   []any
		values map[any]any
	}
	pyStorage struct {
		dtype string
		key   string
		numel int64
	}
	pyTensor struct {
		storage *pyStorage
		offset  int64
		size    []int64
		stride  []int64
	}
)

func (g pyGlobal) String() string { return g.module + "." + g.name }

func newDict() *pyDict { return &pyDict{values: map[any]any{}} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, nil:
	default:
		return fmt.Errorf("%w: dictionary key of type %T", ErrFormat, k)
	}
	if _, ok := d.values[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.values[k] = v
	return nil
}

// maxPickleItems bounds the stack and memo so that a hostile pickle cannot
// make the reader allocate without limit.
const maxPickleItems = 1 << 22

// unpickle evaluates the pickle data of a torch.save zip checkpoint with a
// restricted machine: only the opcodes of protocols 2 to 5 that describe
// plain data, only allowedGlobals and storage classes, persistent ids only
// as storages. It returns the top-level object.
func unpickle(data []byte) (any, error) {
	var (
		stack []any
		marks []int
		memo  = map[int64]any{}
		pos   int
	)
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: pickle at byte %d: %s", ErrFormat, pos, fmt.Sprintf(format, args...))
	}
	need := func(n int) ([]byte, error) {
		if n < 0 || pos+n > len(data) {
			return nil, fail("truncated (need %d bytes)", n)
		}
		b := data[pos : pos+n]
		pos += n
		return b, nil
	}
	// readUint reads an opcode's little-endian unsigned argument.
	readUint := func(size int) (uint64, error) {
		b, err := need(size)
		if err != nil {
			return 0, err
		}
		var v uint64
		for i := size - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v, nil
	}
	readLine := func() (string, error) {
		for i := pos; i < len(data); i++ {
			if data[i] == '\n' {
				s := string(data[pos:i])
				pos = i + 1
				return s, nil
			}
		}
		return "", fail("unterminated line")
	}
	push := func(v any) error {
		if len(stack) >= maxPickleItems {
			return fail("stack too deep")
		}
		stack = append(stack, v)
		return nil
	}
	pop := func() (any, error) {
		if len(stack) == 0 || (len(marks) > 0 && len(stack) == marks[len(marks)-1]) {
			return nil, fail("stack underflow")
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		return v, nil
	}
	popMark := func() ([]any, error) {
		if len(marks) == 0 {
			return nil, fail("no mark")
		}
		m := marks[len(marks)-1]
		marks = marks[:len(marks)-1]
		items := append([]any(nil), stack[m:]...)
		stack = stack[:m]
		return items, nil
	}
	global := func(module, name string) error {
		g := pyGlobal{module, name}
		if !allowedGlobals[g.String()] && storageDTypes[g.String()] == "" {
			return fmt.Errorf("%w: pickle names global %s, which is not allowed (only torch tensors, storages and OrderedDict)", ErrFormat, g)
		}
		return push(g)
	}
	putMemo := func(idx int64) error {
		if len(stack) == 0 {
			return fail("memo put on empty stack")
		}
		if len(memo) >= maxPickleItems {
			return fail("memo too large")
		}
		memo[idx] = stack[len(stack)-1]
		return nil
	}
	getMemo := func(idx int64) error {
		v, ok := memo[idx]
		if !ok {
			return fail("memo entry %d missing", idx)
		}
		return push(v)
	}
	for pos < len(data) {
		op := data[pos]
		pos++
		var err error
		switch op {
		case 0x80: // PROTO
			var b []byte
			if b, err = need(1); err == nil && (b[0] < 2 || b[0] > 5) {
				err = fail("protocol %d", b[0])
			}
		case 0x95: // FRAME
			_, err = need(8)
		case '.': // STOP
			if len(stack) != 1 || len(marks) != 0 {
				return nil, fail("STOP with %d items on the stack", len(stack))
			}
			return stack[0], nil
		case '}': // EMPTY_DICT
			err = push(newDict())
		case ']': // EMPTY_LIST
			err = push(pyList{})
		case ')': // EMPTY_TUPLE
			err = push(pyTuple{})
		case '(': // MARK
			if len(marks) >= maxPickleItems {
				return nil, fail("too many marks")
			}
			marks = append(marks, len(stack))
		case 't': // TUPLE
			var items []any
			if items, err = popMark(); err == nil {
				err = push(pyTuple(items))
			}
		case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
			n := int(op - 0x84)
			items := make(pyTuple, n)
			for i := n - 1; i >= 0 && err == nil; i-- {
				items[i], err = pop()
			}
			if err == nil {
				err = push(items)
			}
		case 'N':
			err = push(nil)
		case 0x88:
			err = push(true)
		case 0x89:
			err = push(false)
		case 'K', 'M': // BININT1, BININT2: unsigned
			var v uint64
			if v, err = readUint(argSize(op)); err == nil {
				err = push(int64(v))
			}
		case 'J': // BININT: signed
			var v uint64
			if v, err = readUint(argSize(op)); err == nil {
				err = push(int64(int32(v)))
			}
		case 0x8a: // LONG1: a length byte, then that many bytes of two's complement
			var size, v uint64
			if size, err = readUint(1); err == nil {
				if size > 8 {
					err = fail("integer of %d bytes", size)
				} else if v, err = readUint(int(size)); err == nil {
					err = push(signExtend(v, int(size)))
				}
			}
		case 'G': // BINFLOAT
			var b []byte
			if b, err = need(8); err == nil {
				err = push(math.Float64frombits(binary.BigEndian.Uint64(b)))
			}
		case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
			var n uint64
			if n, err = readUint(argSize(op)); err == nil && op == 0x8d && n > uint64(len(data)) {
				err = fail("string of %d bytes", n)
			}
			if err == nil {
				var b []byte
				if b, err = need(int(n)); err == nil {
					err = push(string(b))
				}
			}
		case 'c': // GLOBAL
			var module, name string
			if module, err = readLine(); err == nil {
				if name, err = readLine(); err == nil {
					err = global(module, name)
				}
			}
		case 0x93: // STACK_GLOBAL
			var n, m any
			if n, err = pop(); err == nil {
				if m, err = pop(); err == nil {
					ms, ok1 := m.(string)
					ns, ok2 := n.(string)
					if !ok1 || !ok2 {
						err = fail("STACK_GLOBAL needs two strings")
					} else {
						err = global(ms, ns)
					}
				}
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			var idx uint64
			if idx, err = readUint(argSize(op)); err == nil {
				err = putMemo(int64(idx))
			}
		case 0x94: // MEMOIZE
			err = putMemo(int64(len(memo)))
		case 'h', 'j': // BINGET, LONG_BINGET
			var idx uint64
			if idx, err = readUint(argSize(op)); err == nil {
				err = getMemo(int64(idx))
			}
		case 'Q': // BINPERSID
			var pid any
			if pid, err = pop(); err == nil {
				var s *pyStorage
				if s, err = persistentStorage(pid); err == nil {
					err = push(s)
				}
			}
		case 'R': // REDUCE
			var args, fn any
			if args, err = pop(); err == nil {
				if fn, err = pop(); err == nil {
					var v any
					if v, err = reduce(fn, args); err == nil {
						err = push(v)
					}
				}
			}
		case 's': // SETITEM
			var k, v, d any
			if v, err = pop(); err == nil {
				if k, err = pop(); err == nil {
					if d, err = pop(); err == nil {
						dict, ok := d.(*pyDict)
						if !ok {
							err = fail("SETITEM on %T", d)
						} else if err = dict.set(k, v); err == nil {
							err = push(dict)
						}
					}
				}
			}
		case 'u': // SETITEMS
			var items []any
			if items, err = popMark(); err == nil {
				var d any
				if d, err = pop(); err == nil {
					dict, ok := d.(*pyDict)
					switch {
					case !ok:
						err = fail("SETITEMS on %T", d)
					case len(items)%2 != 0:
						err = fail("SETITEMS with an odd number of items")
					default:
						for i := 0; i < len(items) && err == nil; i += 2 {
							err = dict.set(items[i], items[i+1])
						}
						if err == nil {
							err = push(dict)
						}
					}
				}
			}
		case 'a': // APPEND
			var v, l any
			if v, err = pop(); err == nil {
				if l, err = pop(); err == nil {
					list, ok := l.(pyList)
					if !ok {
						err = fail("APPEND on %T", l)
					} else {
						err = push(append(list, v))
					}
				}
			}
		case 'e': // APPENDS
			var items []any
			if items, err = popMark(); err == nil {
				var l any
				if l, err = pop(); err == nil {
					list, ok := l.(pyList)
					if !ok {
						err = fail("APPENDS on %T", l)
					} else {
						err = push(append(list, items...))
					}
				}
			}
		case 'b': // BUILD: only an empty state on a dict (OrderedDict's)
			var state, obj any
			if state, err = pop(); err == nil {
				if obj, err = pop(); err == nil {
					_, isDict := obj.(*pyDict)
					sd, stateDict := state.(*pyDict)
					if !isDict || (state != nil && (!stateDict || len(sd.keys) > 0)) {
						err = fail("BUILD of %T with %T state is not supported", obj, state)
					} else {
						err = push(obj)
					}
				}
			}
		default:
			return nil, fail("opcode 0x%02x is not supported by this restricted reader", op)
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fail("no STOP opcode")
}

// persistentStorage reads a persistent id ("storage", StorageClass, key,
// location, numel) as torch.save writes it.
func persistentStorage(pid any) (*pyStorage, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("%w: persistent id %v is not a storage tuple", ErrFormat, describe(pid))
	}
	kind, _ := t[0].(string)
	g, isGlobal := t[1].(pyGlobal)
	key, isKey := t[2].(string)
	numel, isNum := t[4].(int64)
	if kind != "storage" || !isGlobal || !isKey || !isNum || numel < 0 {
		return nil, fmt.Errorf("%w: persistent id %v is not a storage", ErrFormat, describe(pid))
	}
	dtype := storageDTypes[g.String()]
	if dtype == "" {
		return nil, fmt.Errorf("%w: persistent id names %s, which is not a storage class", ErrFormat, g)
	}
	return &pyStorage{dtype: dtype, key: key, numel: numel}, nil
}

// reduce applies one of the allowed callables.
func reduce(fn, args any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("%w: REDUCE of %s, which is not an allowed global", ErrFormat, describe(fn))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%w: REDUCE of %s with %s arguments", ErrFormat, g, describe(args))
	}
	switch g.String() {
	case "collections.OrderedDict":
		if len(a) != 0 {
			return nil, fmt.Errorf("%w: OrderedDict with arguments", ErrFormat)
		}
		return newDict(), nil
	case "torch._utils._rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad,
		// backward_hooks[, metadata])
		if len(a) < 6 || len(a) > 7 {
			return nil, fmt.Errorf("%w: _rebuild_tensor_v2 with %d arguments", ErrFormat, len(a))
		}
		s, ok1 := a[0].(*pyStorage)
		off, ok2 := a[1].(int64)
		size, ok3 := intTuple(a[2])
		stride, ok4 := intTuple(a[3])
		if !ok1 || !ok2 || !ok3 || !ok4 || off < 0 || len(size) != len(stride) {
			return nil, fmt.Errorf("%w: _rebuild_tensor_v2 arguments %s", ErrFormat, describe(args))
		}
		return &pyTensor{storage: s, offset: off, size: size, stride: stride}, nil
	}
	return nil, fmt.Errorf("%w: %s cannot be called", ErrFormat, g)
}

func intTuple(v any) ([]int64, bool) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func describe(v any) string {
	switch x := v.(type) {
	case pyGlobal:
		return x.String()
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("%q", x)
	case pyTuple:
		return fmt.Sprintf("a tuple of %d", len(x))
	}
	return fmt.Sprintf("%T", v)
}

// argSize is the byte length of the little-endian argument of the opcodes
// that take a fixed one: the short forms take one byte, the long forms
// four, BININT2 two and BINUNICODE8 eight.
func argSize(op byte) int {
	switch op {
	case 'K', 'q', 'h', 0x8c: // BININT1, BINPUT, BINGET, SHORT_BINUNICODE
		return 1
	case 'M': // BININT2
		return 2
	case 'J', 'r', 'j', 'X': // BININT, LONG_BINPUT, LONG_BINGET, BINUNICODE
		return 4
	}
	return 8 // BINUNICODE8
}

// signExtend reads the low size bytes of v as a two's complement integer
// (LONG1's encoding).
func signExtend(v uint64, size int) int64 {
	if size > 0 && size < 8 && v>>(8*size-1)&1 != 0 {
		return int64(v) - 1<<(8*size)
	}
	return int64(v)
}

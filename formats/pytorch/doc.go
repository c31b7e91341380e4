// Package pytorch reads PyTorch checkpoints (pytorch_model.bin and sharded
// pytorch_model-*.bin, torch.save's zip format) without running them.
//
// A .bin is a zip archive whose data.pkl is a pickle: a program for
// Python's unpickler that can call any importable function. This package
// evaluates it with its own restricted machine that understands only the
// opcodes describing plain data and accepts only the globals torch.save
// writes for a state dict (torch._utils._rebuild_tensor_v2, the
// torch.*Storage classes, collections.OrderedDict); any other global is
// refused with an error naming it. Nothing is ever called: the globals are
// recognised by name and their effect is modelled.
//
// Tensor data is never loaded: each tensor becomes a byte range inside its
// storage's stored (uncompressed) zip entry, read in place from a memory
// mapping, and the result is a safetensors.File so that converters treat
// both formats alike.
package pytorch

package quant

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// referenceHashes are the sha256 sums of ggml-quants.c's own output (b4748,
// through testdata/ggml_harness.c) for referenceCase inputs: the
// importance-weighted encoders and the activation formats have no
// llama-quantize golden file, so this table pins them.
var referenceHashes = []struct {
	typ     ggml.Type
	imatrix bool
	sha256  string
}{
	{ggml.TypeQ4_0, false, "d32fb31350d58689a1d634f644a229be7922990a3295be94b0163a7dc3b4e5b9"},
	{ggml.TypeQ4_0, true, "5205177dc90042ff4ac156a724a23892902f883b9360cf9d7a287158611157a2"},
	{ggml.TypeQ4_1, false, "406ce6552b3af7d2c89a9d0db133adfa99832ec021bb28677cd4c60b1084714a"},
	{ggml.TypeQ4_1, true, "9b9f3a9b72bd2507f5ba41989f9c1a53d12e516c817b6e42db90dd0a2dd8a331"},
	{ggml.TypeQ5_0, false, "f966042dffe3a479ff2f068e8bd6b153b9830c34e61ae1ec61af75c4f291b114"},
	{ggml.TypeQ5_0, true, "6ebf73148ffe0cacaa948d8fb9fd5225a2b03aa60ce3235b69af2cb5a32836cf"},
	{ggml.TypeQ5_1, false, "9210f9a958d0fd73b6c7a8e6b5c2a32be21e34bc5db30274c53b043903e0894b"},
	{ggml.TypeQ5_1, true, "33ad6ef143ff93e48bf9ed747203073b8a403dff810eacaac3c67898fa8db35b"},
	{ggml.TypeQ8_0, false, "7953f9f08dfb97a3ab0ac34f5740f43f5cdbcf6b50cb880425737c0959ba1a91"},
	{ggml.TypeQ8_1, false, "8b3dec64ec456d2ae0b2bab79a7a66646cf89c822dd94eb770c9b34d4d66d65b"},
	{ggml.TypeQ2_K, false, "5f22a71c6f033f598ec7ae9790073a67d6347510372f6383d05409b24a0be625"},
	{ggml.TypeQ2_K, true, "7f8bfb718dc83cb3aaf6d4f25415667525cd1fa634f64b879268318a2887d35b"},
	{ggml.TypeQ3_K, false, "5033b90759d984634e57425e543df9088d4b75ac85863ea9c6c2b4980cf97518"},
	{ggml.TypeQ3_K, true, "5c80996e77e491d362ee10b91e093886d390e1deb0cf03af20655edbb62399b0"},
	{ggml.TypeQ4_K, false, "5ff7eb00880d34e11c09a2a9d6288223da3c411f3b1b9d4a0aafa7fc7009a133"},
	{ggml.TypeQ4_K, true, "1b17b602a47a970cd78b5017b7208876c233c74e2aeb976591de42dddb001565"},
	{ggml.TypeQ5_K, false, "0ed8bd6381f72fc3a1e8cd64eba603f4bcc0c004722862799f6c1592407e8f7e"},
	{ggml.TypeQ5_K, true, "73f949b4ffa1e5d45953d055e9e565d2386f8cd42f96f16e94515140ee1b0398"},
	{ggml.TypeQ6_K, false, "1aea818e79ca730140acaf668a4790ee19f76817e508247a09b1c9980e79b706"},
	{ggml.TypeQ6_K, true, "aa40985692eed99716f0bc46667cbbb2e1379f4709276c7453c06cd2ca9e8f3d"},
	{ggml.TypeQ8_K, false, "9067dd6937b0202ca899fe1f78fd81a212ad89ea7dd1124cd2ca5a1ec02ed6fc"},
	{ggml.TypeIQ4_NL, false, "789691e9ba6fe984c75a128d4d54af1eb8d97eae3aed06ac0357edb236556fbd"},
	{ggml.TypeIQ4_NL, true, "a642f3ea6b542107b7b093ed92935303c727368f076e8b35b6db46e31b19368b"},
	{ggml.TypeIQ4_XS, false, "5950373153a5fad007265e11a8ffb99eb1ee33cc8868b0c2a2622264a049cdef"},
	{ggml.TypeIQ4_XS, true, "9781f1410022b7891f14c7e472647286a7ec976e88814a7536267af37d67b065"},
}

func TestReferenceHashes(t *testing.T) {
	for _, c := range referenceHashes {
		x, im := referenceCase(c.typ, c.imatrix)
		got, err := Quantize(c.typ, x, refNe0, im)
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		sum := sha256.Sum256(got)
		if h := hex.EncodeToString(sum[:]); h != c.sha256 {
			t.Errorf("%s imatrix=%v: sha256 %s, ggml %s", c.typ, c.imatrix, h, c.sha256)
		}
	}
}

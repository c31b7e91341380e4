package quant

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/llqt/llqt/formats/ggml"
)

// referenceHashes are the sha256 sums of ggml-quants.c's own output (b4748, recorded
// once from llama.cpp's own quantizers) for referenceCase inputs. The
// importance-weighted encoders, the activation formats and the degenerate
// inputs (zero weights, scales overflowing fp16) have no llama-quantize
// golden file, so this table pins them without needing the harness.
var referenceHashes = []struct {
	typ     ggml.Type
	variant string
	sha256  string
}{
	{ggml.TypeQ4_0, "plain", "d32fb31350d58689a1d634f644a229be7922990a3295be94b0163a7dc3b4e5b9"},
	{ggml.TypeQ4_0, "imatrix", "5205177dc90042ff4ac156a724a23892902f883b9360cf9d7a287158611157a2"},
	{ggml.TypeQ4_0, "zero-weight", "009f70fc9a9d805775e24e1e8a4736f64ad274b0b7840241721fc47318e1eed7"},
	{ggml.TypeQ4_0, "extreme", "43e3b614ba07e52b164e58465a7b83cedb192e5168743b0d4dae57cefb9c255a"},
	{ggml.TypeQ4_1, "plain", "406ce6552b3af7d2c89a9d0db133adfa99832ec021bb28677cd4c60b1084714a"},
	{ggml.TypeQ4_1, "imatrix", "9b9f3a9b72bd2507f5ba41989f9c1a53d12e516c817b6e42db90dd0a2dd8a331"},
	{ggml.TypeQ4_1, "zero-weight", "f8919aab9b0569c37a9953442a0abf19fc89a31104fe0e703572bef5bcf890c0"},
	{ggml.TypeQ4_1, "extreme", "bc9372c948876a99d972c97c77035057a3ab9188f7c79158be63b0749b000dd9"},
	{ggml.TypeQ5_0, "plain", "f966042dffe3a479ff2f068e8bd6b153b9830c34e61ae1ec61af75c4f291b114"},
	{ggml.TypeQ5_0, "imatrix", "6ebf73148ffe0cacaa948d8fb9fd5225a2b03aa60ce3235b69af2cb5a32836cf"},
	{ggml.TypeQ5_0, "zero-weight", "ee4df24e3eec172679e0dc414a100c48982a0c03c652382699789f96f0925d00"},
	{ggml.TypeQ5_0, "extreme", "3f5e88247c340be17e7d517b17d893c16dab8d5716186491e682d476fcfed9d8"},
	{ggml.TypeQ5_1, "plain", "9210f9a958d0fd73b6c7a8e6b5c2a32be21e34bc5db30274c53b043903e0894b"},
	{ggml.TypeQ5_1, "imatrix", "33ad6ef143ff93e48bf9ed747203073b8a403dff810eacaac3c67898fa8db35b"},
	{ggml.TypeQ5_1, "zero-weight", "fa80ca668633407ec3446af3ea14e7e5de132c8fb0c88a19423b9fe30a7f6018"},
	{ggml.TypeQ5_1, "extreme", "a42a2292c3414a18f31c4eedf85bc0fec38977fa672a1cfe28b55dbe4980f1ff"},
	{ggml.TypeQ8_0, "plain", "7953f9f08dfb97a3ab0ac34f5740f43f5cdbcf6b50cb880425737c0959ba1a91"},
	{ggml.TypeQ8_0, "extreme", "2246e36dc4c66eab3925689fc5d96ba3ba0704bc03e3ec7c224dd30881106262"},
	{ggml.TypeQ8_1, "plain", "8b3dec64ec456d2ae0b2bab79a7a66646cf89c822dd94eb770c9b34d4d66d65b"},
	{ggml.TypeQ8_1, "extreme", "86777ce7a894fd920d75865da678ff295c9efd65ce992429012f7a2bf195f765"},
	{ggml.TypeQ2_K, "plain", "5f22a71c6f033f598ec7ae9790073a67d6347510372f6383d05409b24a0be625"},
	{ggml.TypeQ2_K, "imatrix", "7f8bfb718dc83cb3aaf6d4f25415667525cd1fa634f64b879268318a2887d35b"},
	{ggml.TypeQ2_K, "zero-weight", "fa7aa5c3defecbdede91309420b1b321ac81954b31cda2c411bd076419a8980a"},
	{ggml.TypeQ2_K, "extreme", "a3627c04372ca7367244761b0fb5fcc4d30525369e7d4ce002048f88470a2b67"},
	{ggml.TypeQ3_K, "plain", "5033b90759d984634e57425e543df9088d4b75ac85863ea9c6c2b4980cf97518"},
	{ggml.TypeQ3_K, "imatrix", "5c80996e77e491d362ee10b91e093886d390e1deb0cf03af20655edbb62399b0"},
	{ggml.TypeQ3_K, "zero-weight", "1e6d5e7c02cee4898480e2a27baab231d2f900c1b6e36194fe747f5164489723"},
	{ggml.TypeQ3_K, "extreme", "01f6aa7e6e7c7021c3fb01945d50e72220c8a480cdd808d8b8426e6112ed71bd"},
	{ggml.TypeQ4_K, "plain", "5ff7eb00880d34e11c09a2a9d6288223da3c411f3b1b9d4a0aafa7fc7009a133"},
	{ggml.TypeQ4_K, "imatrix", "1b17b602a47a970cd78b5017b7208876c233c74e2aeb976591de42dddb001565"},
	{ggml.TypeQ4_K, "zero-weight", "7a8eea672bfdb14b1d7047fd36c789737946800043154815b99f5865ece4ebd5"},
	{ggml.TypeQ4_K, "extreme", "04bb7a8bb63594119b138b119826ca590831e0632da663172b04796c4dee87c5"},
	{ggml.TypeQ5_K, "plain", "0ed8bd6381f72fc3a1e8cd64eba603f4bcc0c004722862799f6c1592407e8f7e"},
	{ggml.TypeQ5_K, "imatrix", "73f949b4ffa1e5d45953d055e9e565d2386f8cd42f96f16e94515140ee1b0398"},
	{ggml.TypeQ5_K, "zero-weight", "a688c62db1b3b97a0f62dfee00e87f02c2c8434f18316d6b9a3d71f294ee83b2"},
	{ggml.TypeQ5_K, "extreme", "b80d4fdc3595348ffee89fc4db2836fcd59539559f43c2f45be1023ccea24a37"},
	{ggml.TypeQ6_K, "plain", "1aea818e79ca730140acaf668a4790ee19f76817e508247a09b1c9980e79b706"},
	{ggml.TypeQ6_K, "imatrix", "aa40985692eed99716f0bc46667cbbb2e1379f4709276c7453c06cd2ca9e8f3d"},
	{ggml.TypeQ6_K, "zero-weight", "79858be2fb2b14fbf6d48a9bf49912e7dfa6509171f5d06f6b5aaf5ff28a31f7"},
	{ggml.TypeQ6_K, "extreme", "16d9e5d1befbed55e78b61087aa2e5624f23ab6bd637cf25d8089e90ca2cc85a"},
	{ggml.TypeQ8_K, "plain", "9067dd6937b0202ca899fe1f78fd81a212ad89ea7dd1124cd2ca5a1ec02ed6fc"},
	{ggml.TypeQ8_K, "extreme", "6e87b96d84ab283be559e9dcdfee48d81e8103f0616d1d5aa87e58852c51275e"},
	{ggml.TypeIQ4_NL, "plain", "789691e9ba6fe984c75a128d4d54af1eb8d97eae3aed06ac0357edb236556fbd"},
	{ggml.TypeIQ4_NL, "imatrix", "a642f3ea6b542107b7b093ed92935303c727368f076e8b35b6db46e31b19368b"},
	{ggml.TypeIQ4_NL, "zero-weight", "65a4b6dea6399b8731d6d7ef9dfd0cdd360d31f9617093ee0540420e86b7d6d6"},
	{ggml.TypeIQ4_NL, "extreme", "2533efcba2ea2499625b15cdec59c1d121a1249b3d3dc15d174189ceed2401e3"},
	{ggml.TypeIQ4_XS, "plain", "5950373153a5fad007265e11a8ffb99eb1ee33cc8868b0c2a2622264a049cdef"},
	{ggml.TypeIQ4_XS, "imatrix", "9781f1410022b7891f14c7e472647286a7ec976e88814a7536267af37d67b065"},
	{ggml.TypeIQ4_XS, "zero-weight", "b2c3ef4d1f4cfaa145def685306ea735fa052de8a0d5db45ac74e77d442879db"},
	{ggml.TypeIQ4_XS, "extreme", "64626c99cc778aada09a72ee29fa05c903b536739dbb37c2821357c86d0a0830"},
	// The 2-bit grid types: ggml has no unweighted IQ2_XXS and IQ2_XS
	// encoders; its zero-weight IQ2 sub-blocks reuse levels from earlier
	// rows (uninitialized stack) or assert, and extreme inputs assert.
	{ggml.TypeIQ2_XXS, "imatrix", "6afa7b8059728a2f36453a359cdf1fe7fe0cc5c438425e0d274144f083faa994"},
	{ggml.TypeIQ2_XS, "imatrix", "244d8654dda519eb730ae9ae4403a6df8b26b499f32134ecd13685ada79132f2"},
	{ggml.TypeIQ2_S, "plain", "5f82bca815200a7290dfd924eaa46ae9183745b1e378cede0c41c3657a487fc1"},
	{ggml.TypeIQ2_S, "imatrix", "9889764fbcd5bdfc687a8db7174e05d525bc453574d21269c52301d38b1cb4be"},
	// IQ3: ggml's own output for zero-weight IQ3_XXS depends on
	// uninitialized stack memory (it crashed when recorded) and for extreme
	// inputs both IQ3 encoders abort, so those have no hash.
	{ggml.TypeIQ3_XXS, "plain", "989f7dd1b03a366222e82c89f45466bbf631bb40a6b24bbe30d3ed202fd4c6db"},
	{ggml.TypeIQ3_XXS, "imatrix", "8cd68d0a03a72f278e056dcb5e2ead72aa421a255b4189f301723a2718453131"},
	{ggml.TypeIQ3_S, "plain", "f1187790e956f56fa5baafce0254f0f31398344a4be0c868cf92b4bb4b76e19e"},
	{ggml.TypeIQ3_S, "imatrix", "c0d776afc1818b68f657d5a91a9b837286eab92abd5fe5f2d8598d4a39905ce2"},
	{ggml.TypeIQ3_S, "zero-weight", "8a97b322d54d6ad52ccd0464ed49210c6e08c3fc56310f246b33f63a2ec0dd80"},
}

func TestReferenceHashes(t *testing.T) {
	for _, c := range referenceHashes {
		x, im := referenceCase(c.typ, c.variant)
		got, err := Quantize(c.typ, x, refNe0, im)
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		sum := sha256.Sum256(got)
		if h := hex.EncodeToString(sum[:]); h != c.sha256 {
			t.Errorf("%s %s: sha256 %s, ggml %s", c.typ, c.variant, h, c.sha256)
		}
	}
}

package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Pre-tokenizer detection as convert_hf_to_gguf.py b4748 does it
// (get_vocab_base_pre): encode checkText with the tokenizer's own pipeline
// (pre-tokenizer, model and post-processor, default special tokens), hash
// the ids as Python prints the list ("[1, 2, 3]") with SHA-256, and look the
// digest up in the table of known tokenizers. The text and the digests are
// b4748's.

const checkText = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\U0001f680 (normal) \U0001f636\u200d\U0001f32b\ufe0f (multiple emojis concatenated) \u2705 \U0001f999\U0001f999 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \u1780\u17b6\u1793\u17cb\u178f\u17c2\u1796\u17b7\u179f\u17c1\u179f\u17a2\u17b6\u1785\U0001f601 ?\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e ------======= \u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438 ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"

// checkTextSHA256 guards checkText against accidental edits.
const checkTextSHA256 = "a36179c1e2b1cfcfbfad1dc779addad2ffc778201e4cf0d538bddeafa2c526da"

// knownPreTokenizers maps b4748's chkhsh digests to tokenizer.ggml.pre
// names (where b4748 lists a digest twice, its later entry wins, as in its
// chain of ifs), with the model b4748 took it from.
var knownPreTokenizers = map[string]string{
	"0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5": "llama-bpe",        // https://huggingface.co/meta-llama/Meta-Llama-3-8B
	"049ecf7629871e3041641907f3de7c733e4dbfdc736f57d882ba0b0845599754": "deepseek-llm",     // https://huggingface.co/deepseek-ai/deepseek-llm-7b-base
	"347715f544604f9118bb75ed199f68779f423cabb20db6de6f31b908d04d7821": "deepseek-coder",   // https://huggingface.co/deepseek-ai/deepseek-coder-6.7b-base
	"8aeee3860c56296a157a1fe2fad249ec40aa59b1bb5709f4ade11c4e6fe652ed": "falcon",           // https://huggingface.co/tiiuae/falcon-7b
	"9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e": "falcon3",          // https://huggingface.co/tiiuae/Falcon3-7B-Base
	"0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f": "jina-v2-en",       // https://huggingface.co/jinaai/jina-embeddings-v2-base-en
	"8e62295832751ca1e8f92f2226f403dea30dc5165e448b5bfa05af5340c64ec7": "bert-bge-large",   // https://huggingface.co/BAAI/bge-large-zh-v1.5
	"b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166": "olmo",             // https://huggingface.co/allenai/OLMo-1.7-7B-hf
	"35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34": "starcoder",        // https://huggingface.co/bigcode/starcoder2-3b
	"3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454": "gpt-2",            // https://huggingface.co/openai-community/gpt2
	"32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3": "stablelm2",        // https://huggingface.co/stabilityai/stablelm-2-zephyr-1_6b
	"6221ad2852e85ce96f791f476e0b390cf9b474c9e3d1362f53a24a06dc8220ff": "refact",           // https://huggingface.co/smallcloudai/Refact-1_6-base
	"9c2227e4dd922002fb81bde4fc02b0483ca4f12911410dee2255e4987644e3f8": "command-r",        // https://huggingface.co/CohereForAI/c4ai-command-r-v01
	"e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea": "qwen2",            // https://huggingface.co/Qwen/Qwen1.5-7B
	"a8594e3edff7c29c003940395316294b2c623e09894deebbc65f33f1515df79e": "dbrx",             // https://huggingface.co/databricks/dbrx-base
	"c7699093ba4255a91e702aa38a596aa81669f3525dae06c2953267dde580f448": "jina-v1-en",       // https://huggingface.co/jinaai/jina-reranker-v1-tiny-en
	"171aeeedd6fb548d418a7461d053f11b6f1f1fc9b387bd66640d28a4b9f5c643": "jina-v2-es",       // https://huggingface.co/jinaai/jina-embeddings-v2-base-es
	"27949a2493fc4a9f53f5b9b029c82689cfbe5d3a1929bb25e043089e28466de6": "jina-v2-de",       // https://huggingface.co/jinaai/jina-embeddings-v2-base-de
	"c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d": "smaug-bpe",        // https://huggingface.co/abacusai/Smaug-Llama-3-70B-Instruct
	"c7ea5862a53e4272c035c8238367063e2b270d51faa48c0f09e9d5b54746c360": "poro-chat",        // https://huggingface.co/LumiOpen/Poro-34B-chat
	"7967bfa498ade6b757b064f31e964dddbb80f8f9a4d68d4ba7998fcf281c531a": "jina-v2-code",     // https://huggingface.co/jinaai/jina-embeddings-v2-base-code
	"7fc505bd3104ca1083b150b17d088b59534ede9bde81f0dd2090967d7fe52cee": "viking",           // https://huggingface.co/LumiOpen/Viking-7B
	"b53802fb28e26d645c3a310b34bfe07da813026ec7c7716883404d5e0f8b1901": "jais",             // https://huggingface.co/core42/jais-13b
	"7b3e7548e4308f52a76e8229e4e6cc831195d0d1df43aed21ac6c93da05fec5f": "codeshell",        // https://huggingface.co/WisdomShell/CodeShell-7B
	"63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e": "tekken",           // https://huggingface.co/mistralai/Mistral-Nemo-Base-2407
	"855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249": "smollm",           // https://huggingface.co/HuggingFaceTB/SmolLM-135M
	"3c30d3ad1d6b64202cd222813e7736c2db6e1bd6d67197090fc1211fbc612ae7": "bloom",            // https://huggingface.co/bigscience/bloom
	"bc01ce58980e1db43859146dc51b1758b3b88729b217a74792e9f8d43e479d21": "gpt3-finnish",     // https://huggingface.co/TurkuNLP/gpt3-finnish-small
	"4e2b24cc4770243d65a2c9ec19770a72f08cffc161adbb73fcbb6b7dd45a0aae": "exaone",           // https://huggingface.co/LGAI-EXAONE/EXAONE-3.0-7.8B-Instruct
	"fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085": "phi-2",            // https://huggingface.co/microsoft/phi-2
	"60824e3c0d9401f89943cbb2fff727f0e2d4c545ba4df2d6e4f09a6db0f5b450": "chameleon",        // https://huggingface.co/facebook/chameleon-7b
	"1431a23e583c97432bc230bff598d103ddb5a1f89960c8f1d1051aaa944d0b35": "minerva-7b",       // https://huggingface.co/sapienzanlp/Minerva-7B-base-v1.0
	"8b5a93ed704057481f240da0be7e7dca721d7f8f4755263b6807227a2cbeae65": "roberta-bpe",      // https://huggingface.co/sentence-transformers/stsb-roberta-base
	"ad851be1dba641f2e3711822f816db2c265f788b37c63b4e1aeacb9ee92de8eb": "gigachat",         // https://huggingface.co/ai-sage/GigaChat-20B-A3B-instruct
	"d4c8f286ea6b520b3d495c4455483cfa2302c0cfcd4be05d781b6a8a0a7cdaf1": "megrez",           // https://huggingface.co/Infinigence/Megrez-3B-Instruct
	"877081d19cf6996e2c4ff0e1236341e9b7bde288f5311a56a937f0afbbb3aeb5": "deepseek-v3",      // https://huggingface.co/deepseek-ai/DeepSeek-V3
	"b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5": "deepseek-r1-qwen", // https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
	"b6e8e1518dc4305be2fe39c313ed643381c4da5db34a98f6a04c093f8afbe99b": "chatglm-bpe",      // https://huggingface.co/THUDM/glm-4-9b-chat
	"81d72c7348a9f0ebe86f23298d37debe0a5e71149e29bd283904c02262b27516": "chatglm-bpe",      // https://huggingface.co/THUDM/glm-4-9b-chat
}

// KnownPreTokenizers lists the tokenizer.ggml.pre names b4748's converter
// can detect, sorted (the accepted values of Options.Pre).
func KnownPreTokenizers() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range knownPreTokenizers {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// HFEncoder encodes text with the tokenizer.json in data as Hugging Face's
// tokenizer.encode does (default special tokens added). convert cannot run
// a tokenizer itself (it imports only formats); the caller supplies one,
// e.g. eval/tokenizer's FromHFJSON.
type HFEncoder func(data []byte, path, text string) ([]int32, error)

// checkHash is the chkhsh of ids.
func checkHash(ids []int32) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	b.WriteByte(']')
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// detectPre names the pre-tokenizer of dir/tokenizer.json: override when
// set (--pre), else by chkhsh with enc.
func detectPre(dir, override string, enc HFEncoder) (string, error) {
	path := filepath.Join(dir, "tokenizer.json")
	if override != "" {
		for _, n := range KnownPreTokenizers() {
			if n == override {
				return override, nil
			}
		}
		return "", fmt.Errorf("%w: --pre %q is not a pre-tokenizer b4748 knows (%s)", ErrTokenizer, override, strings.Join(KnownPreTokenizers(), ", "))
	}
	if enc == nil {
		return "", fmt.Errorf("%s: %w: detecting the BPE pre-tokenizer needs a tokenizer to run; name it with --pre", path, ErrTokenizer)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	ids, err := enc(data, path, checkText)
	if err != nil {
		return "", fmt.Errorf("%s: %w: cannot run it to detect the pre-tokenizer (%v); name it with --pre", path, ErrTokenizer, err)
	}
	h := checkHash(ids)
	name, ok := knownPreTokenizers[h]
	if !ok {
		return "", fmt.Errorf("%s: %w: pre-tokenizer with chkhsh %s is not one llama.cpp b4748 knows; name one with --pre", path, ErrTokenizer, h)
	}
	return name, nil
}

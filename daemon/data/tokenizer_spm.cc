// The SentencePiece shim behind data/tokenizer.h: the one C++ file of the
// project, only what needs SentencePiece's C++ API. Every entry point
// catches every exception (std::bad_alloc from a vector, anything the
// library throws) and turns it into eg_errorf(), so none reaches C.
#include "data/tokenizer.h"

#include <climits>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

extern "C" {
#include "util/err.h"
}

struct eg_spm {
    sentencepiece::SentencePieceProcessor sp;
    std::string name; // the model file, for messages
};

extern "C" int eg_spm_load(const void *bytes, size_t n, const char *name, eg_spm **out)
{
    *out = nullptr;
    eg_spm *m = nullptr;
    try {
        m = new eg_spm;
        m->name = name;
        const sentencepiece::util::Status st = m->sp.LoadFromSerializedProto(
            absl::string_view(static_cast<const char *>(bytes), n));
        if (!st.ok()) {
            eg_errorf("%s: not a SentencePiece model (%s)", name, st.ToString().c_str());
            delete m;
            return -1;
        }
        const int pieces = m->sp.GetPieceSize();
        if (pieces < 1 || pieces > INT32_MAX - 2) {
            eg_errorf("%s: not a SentencePiece model (%d pieces)", name, pieces);
            delete m;
            return -1;
        }
    } catch (const std::exception &e) {
        delete m;
        return eg_errorf("%s: loading the SentencePiece model failed: %s", name, e.what());
    } catch (...) {
        delete m;
        return eg_errorf("%s: loading the SentencePiece model failed", name);
    }
    *out = m;
    return 0;
}

extern "C" int eg_spm_pieces(const eg_spm *m) { return m->sp.GetPieceSize(); }

extern "C" int eg_spm_encode(const eg_spm *m, const char *word, size_t len, int32_t *ids,
                             int cap)
{
    try {
        std::vector<int> got;
        const sentencepiece::util::Status st = m->sp.Encode(absl::string_view(word, len), &got);
        if (!st.ok())
            return eg_errorf("%s: encoding a %zu-byte word failed: %s", m->name.c_str(), len,
                             st.ToString().c_str());
        if (got.size() > static_cast<size_t>(INT_MAX))
            return eg_errorf("%s: a %zu-byte word gives too many pieces", m->name.c_str(), len);
        const int count = static_cast<int>(got.size());
        for (int i = 0; i < count && i < cap; i++) ids[i] = got[static_cast<size_t>(i)];
        return count;
    } catch (const std::exception &e) {
        return eg_errorf("%s: encoding a %zu-byte word failed: %s", m->name.c_str(), len,
                         e.what());
    } catch (...) {
        return eg_errorf("%s: encoding a %zu-byte word failed", m->name.c_str(), len);
    }
}

extern "C" void eg_spm_free(eg_spm *m) { delete m; }

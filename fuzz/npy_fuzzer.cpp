// Fuzzes the .npy reader: parse_npy on arbitrary bytes. A file it accepts must come back
// unchanged (type, shape, data) through encode_npy -> parse_npy.
#include "fuzz/fuzz_support.h"
#include "simulator/npy.h"

using namespace tpusim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto tensor = fuzz::accepted([&] { return parse_npy(bytes, "fuzz.npy"); });
  if (!tensor) return 0;
  // Our own output must read back: an Error here escapes and is a finding.
  std::string encoded = encode_npy(*tensor);
  HostTensor again = parse_npy(encoded, "fuzz-encoded.npy");
  if (again.dtype != tensor->dtype || again.shape != tensor->shape ||
      again.bytes != tensor->bytes) {
    fuzz::property_failed("parse_npy(encode_npy(t)) differs from t", bytes, encoded);
  }
  return 0;
}

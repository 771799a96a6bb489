#include "simulator/random_data.h"

#include <bit>

#include "ir/diagnostics.h"

namespace tpusim {

namespace {

// One splitmix64 step: advances `state` by the golden-ratio constant and returns a scrambled
// copy. Also used alone as a 64-bit mixing function.
uint64_t splitmix64(uint64_t& state) {
  state += 0x9e3779b97f4a7c15ull;
  uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t mix64(uint64_t value) {
  return splitmix64(value);
}

// Stores the low `width` bytes of `bits` little-endian, whatever the host's byte order.
void store_le(uint8_t* out, uint32_t bits, int width) {
  for (int i = 0; i < width; ++i) out[i] = static_cast<uint8_t>(bits >> (8 * i));
}

}  // namespace

RandomStream::RandomStream(uint64_t seed) {
  uint64_t seeder = seed;
  for (uint64_t& word : state_) word = splitmix64(seeder);
}

uint64_t RandomStream::next() {
  uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
  uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = std::rotl(state_[3], 45);
  return result;
}

int64_t RandomStream::uniform_int(int64_t low, int64_t high) {
  TPUSIM_CHECK(low <= high, "uniform_int needs low <= high");
  // Unsigned arithmetic: the span of the full int64 range wraps to 0, meaning "all 2^64".
  uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low) + 1;
  if (span == 0) return static_cast<int64_t>(next());
  // Accept only draws >= 2^64 mod span: what remains is a whole number of copies of
  // [0, span), so `draw % span` is exactly uniform.
  uint64_t threshold = (0 - span) % span;
  uint64_t draw = next();
  while (draw < threshold) draw = next();
  return static_cast<int64_t>(static_cast<uint64_t>(low) + draw % span);
}

float RandomStream::uniform_signed_unit() {
  // The top 24 bits give k in [0, 2^24); (k - 2^23) * 2^-23 is exact in float32.
  int64_t k = static_cast<int64_t>(next() >> 40);
  return static_cast<float>(k - (int64_t{1} << 23)) * 0x1p-23f;
}

HostTensor random_tensor(DType dtype, std::vector<int64_t> shape, uint64_t seed) {
  for (int64_t dim : shape) TPUSIM_CHECK(dim >= 0, "random_tensor shape has a negative dimension");
  HostTensor tensor{dtype, std::move(shape), {}};
  const int64_t count = tensor.element_count();
  const int size = dtype_size(dtype);
  tensor.bytes.resize(static_cast<size_t>(count) * static_cast<size_t>(size));

  RandomStream stream(seed);
  uint8_t* out = tensor.bytes.data();
  for (int64_t i = 0; i < count; ++i, out += size) {
    switch (dtype) {
      case DType::Int8:
        // The top bits are xoshiro256**'s strongest; as a byte they are uniform over int8.
        out[0] = static_cast<uint8_t>(stream.next() >> 56);
        break;
      case DType::Int32:
        store_le(out, static_cast<uint32_t>(stream.uniform_int(-(1 << 20), 1 << 20)), 4);
        break;
      case DType::BF16:
        store_le(out, float_to_bf16(stream.uniform_signed_unit()), 2);
        break;
      case DType::FP32:
        store_le(out, std::bit_cast<uint32_t>(stream.uniform_signed_unit()), 4);
        break;
    }
  }
  return tensor;
}

uint64_t seed_for(std::string_view name, uint64_t base_seed) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a, 64-bit
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ull;
  }
  // Mixing the base seed first keeps seed_for(name, s) and seed_for(name, s + 1) unrelated.
  return mix64(hash ^ mix64(base_seed));
}

}  // namespace tpusim

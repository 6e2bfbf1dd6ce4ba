#include "api/listing_stream.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "api/json_codec.hpp"

namespace dlipkg::api {

ListingStream::ListingStream(std::unique_ptr<ListingWalk> walk, std::string modules_json)
    : walk_(std::move(walk)), modules_json_(std::move(modules_json)) {}

Result<void> ListingStream::Start() {
  pending_ = R"({"resources":[)";
  return Refill();
}

// Fills the whole buffer (the HTTP layer's chunk) from as many batches as it takes: each
// Read is a hop to the pool and a chunk on the wire, so one per batch would multiply both.
Result<std::size_t> ListingStream::Read(std::span<char> buffer) {
  std::size_t copied = 0;
  while (copied < buffer.size()) {
    if (read_ == pending_.size()) {
      if (finished_) break;
      pending_.clear();
      read_ = 0;
      if (auto ok = Refill(); !ok) return std::unexpected(ok.error());
      continue;
    }
    const std::size_t n = std::min(buffer.size() - copied, pending_.size() - read_);
    std::memcpy(buffer.data() + copied, pending_.data() + read_, n);
    read_ += n;
    copied += n;
  }
  return copied;
}

Result<void> ListingStream::Refill() {
  auto more = walk_->Next(batch_);
  if (!more) return std::unexpected(more.error());
  if (*more)
    Append(batch_);
  else
    Finish();
  return {};
}

void ListingStream::Append(const ListingWalk::Batch& batch) {
  for (const auto& package : batch.ungrouped) {
    if (!first_in_array_) pending_ += ',';
    first_in_array_ = false;
    AppendPackage(package, pending_);
    ++total_;
  }
  if (!batch.groups.empty() && !in_groups_) {
    pending_ += R"(],"groups":[)";
    in_groups_ = true;
    first_in_array_ = true;
  }
  for (const auto& group : batch.groups) {
    if (!first_in_array_) pending_ += ',';
    first_in_array_ = false;
    AppendGroup(group, pending_);
    total_ += group.packages.size();
  }
}

void ListingStream::Finish() {
  if (!in_groups_) pending_ += R"(],"groups":[)";
  pending_ += R"(],"modules":)" + modules_json_ + R"(,"total":)" + std::to_string(total_) + "}";
  finished_ = true;
}

}  // namespace dlipkg::api

// libFuzzer target: request-target parsing and routing, through ResourcesApi::Handle on the
// core's in-memory fakes (no network). The first byte picks the method, the rest of the first
// line is the target, what follows the newline the body. Every answer must be a valid status.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/resources_api.hpp"
#include "core/blob_keeper.hpp"
#include "core/worker_pool.hpp"
#include "testing/fakes.hpp"
#include "testing/settable_clock.hpp"

namespace {

struct Core {
  Core() { fetcher.Serve("http://src/a.py", "print('a')"); }
  dlipkg::testing::FakeMetadataStore metadata;
  dlipkg::testing::FakeJobQueue jobs{metadata};
  dlipkg::testing::FakeBlobStore blobs;
  dlipkg::testing::FakeFetcher fetcher;
  dlipkg::testing::SettableClock clock;
  dlipkg::testing::RecordingEventSink events;
  dlipkg::BlobKeeper keeper{metadata, blobs, clock, events, "fuzz"};
  dlipkg::WorkerPool pool{1};
  dlipkg::PackageService service{
      dlipkg::ServicePorts{metadata, jobs, blobs, fetcher, clock, keeper, pool, events}};
  dlipkg::api::ResourcesApi api{service, dlipkg::api::ApiOptions{.default_owner = "local"}, nullptr};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Core* core = new Core();  // shared across inputs, as a running server's state is
  if (size == 0) return 0;
  static constexpr const char* kMethods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto newline = rest.find('\n');
  dlipkg::api::Request request;
  request.method = kMethods[data[0] % 6];
  request.target = std::string(rest.substr(0, newline));
  if (newline != std::string_view::npos) request.body = std::string(rest.substr(newline + 1));
  request.remote_address = "127.0.0.1";
  request.request_id = "fuzz";
  const auto response = core->api.Handle(request);
  if (response.status < 200 || response.status > 599) std::abort();
  return 0;
}

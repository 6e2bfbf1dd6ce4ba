// PackageService on the core's in-memory fakes, for the API's unit tests: the API runs against
// a real core, only the stores and the fetcher are fakes. Serves http://src/a.py.
// One per test; not shared between threads.
#pragma once

#include "core/blob_keeper.hpp"
#include "core/package_service.hpp"
#include "core/worker_pool.hpp"
#include "unit/core/fakes.hpp"

namespace dlipkg::api {

struct FakeCore {
  FakeCore() { fetcher.Serve("http://src/a.py", "print('a')"); }
  testing::FakeMetadataStore metadata;
  testing::FakeJobQueue jobs{metadata};
  testing::FakeBlobStore blobs;
  testing::FakeFetcher fetcher;
  testing::FakeClock clock;
  BlobKeeper keeper{metadata, blobs, clock, "test"};
  WorkerPool pool{1};
  PackageService service{ServicePorts{metadata, jobs, blobs, fetcher, clock, keeper, pool}};
};

}  // namespace dlipkg::api

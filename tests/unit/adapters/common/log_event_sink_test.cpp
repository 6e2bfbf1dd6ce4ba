// The log line of each event names the job, project, group and package, and the figures of
// its kind; fields not set are left out.
#include "adapters/common/log_event_sink.hpp"

#include <gtest/gtest.h>

namespace dlipkg {
namespace {

TEST(LogEventSinkTest, RetryLineNamesTheJobAndItsDelay) {
  EXPECT_EQ(FormatEvent({.kind = EventKind::kJobRetrying,
                         .job_id = 7,
                         .project = "p1",
                         .group = "g",
                         .name = "a.py",
                         .attempt = 2,
                         .delay_ms = 400,
                         .cause = "HTTP 503"}),
            "job retrying job=7 project=p1 group=g package=a.py attempt=2 delay_ms=400 "
            "cause: HTTP 503");
}

TEST(LogEventSinkTest, ReadyLineHasBytesAndDuration) {
  EXPECT_EQ(FormatEvent({.kind = EventKind::kJobReady,
                         .job_id = 3,
                         .project = "p1",
                         .name = "x.jar",
                         .sha256 = "ab",
                         .attempt = 1,
                         .bytes = 10,
                         .duration_ms = 25}),
            "job ready job=3 project=p1 package=x.jar sha256=ab attempt=1 bytes=10 "
            "duration_ms=25");
}

TEST(LogEventSinkTest, StoreErrorLineNamesTheOperation) {
  EXPECT_EQ(FormatEvent({.kind = EventKind::kStoreError,
                         .operation = "reclaim blob",
                         .sha256 = "cd",
                         .cause = "disk full"}),
            "store error: reclaim blob sha256=cd cause: disk full");
}

TEST(LogEventSinkTest, EveryKindHasAName) {
  for (EventKind kind : {EventKind::kJobQueued, EventKind::kJobStarted, EventKind::kJobRetrying,
                         EventKind::kJobFailed, EventKind::kJobReady, EventKind::kStoreError,
                         EventKind::kBlobReclaimed}) {
    const std::string line = FormatEvent({.kind = kind});
    EXPECT_FALSE(line.empty());
    EXPECT_NE(line.substr(0, 5), "event") << line;
  }
  LogEventSink sink;
  sink.Report({.kind = EventKind::kJobFailed, .cause = "logged, not thrown"});
}

}  // namespace
}  // namespace dlipkg

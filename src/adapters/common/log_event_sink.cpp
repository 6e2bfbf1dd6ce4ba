#include "adapters/common/log_event_sink.hpp"

#include <spdlog/spdlog.h>

namespace dlipkg {
namespace {

std::string_view KindName(EventKind kind) {
  switch (kind) {
    case EventKind::kJobQueued:
      return "job queued";
    case EventKind::kJobStarted:
      return "job started";
    case EventKind::kJobRetrying:
      return "job retrying";
    case EventKind::kJobFailed:
      return "job failed";
    case EventKind::kJobReady:
      return "job ready";
    case EventKind::kStoreError:
      return "store error";
    case EventKind::kBlobReclaimed:
      return "blob reclaimed";
    case EventKind::kCollected:
      return "collected";
  }
  return "event";
}

// Who the event is about; fields that are not set are left out.
std::string Subject(const Event& event) {
  std::string out;
  const auto add = [&out](std::string_view key, const std::string& value) {
    if (!value.empty()) out += " " + std::string(key) + "=" + value;
  };
  if (event.job_id != 0) add("job", std::to_string(event.job_id));
  add("project", event.project);
  add("group", event.group);
  add("package", event.name);
  add("sha256", event.sha256);
  return out;
}

}  // namespace

std::string FormatEvent(const Event& event) {
  std::string line(KindName(event.kind));
  if (!event.operation.empty()) line += ": " + event.operation;
  line += Subject(event);
  if (event.attempt != 0) line += " attempt=" + std::to_string(event.attempt);
  if (event.kind == EventKind::kJobRetrying) line += " delay_ms=" + std::to_string(event.delay_ms);
  if (event.kind == EventKind::kJobReady)
    line += " bytes=" + std::to_string(event.bytes) +
            " duration_ms=" + std::to_string(event.duration_ms);
  if (event.kind == EventKind::kCollected) line += " count=" + std::to_string(event.count);
  if (!event.cause.empty()) line += " cause: " + event.cause;
  return line;
}

void LogEventSink::Report(const Event& event) {
  const std::string line = FormatEvent(event);
  // A failed package or store call wants an operator's eye; the rest is the jobs' history.
  if (event.kind == EventKind::kJobFailed || event.kind == EventKind::kStoreError)
    spdlog::warn("{}", line);
  else
    spdlog::info("{}", line);
}

}  // namespace dlipkg

// EventSink that writes each event as one log line (spdlog) naming the job, project, group and
// package, so what the core could only note (a retry, a failed reclaim) is seen by operators.
// Plugged in by the composition root. Thread-safe (spdlog's loggers are).
#pragma once

#include <string>

#include "ports/event_sink.hpp"

namespace dlipkg {

class LogEventSink final : public EventSink {
 public:
  void Report(const Event& event) override;
};

// The line LogEventSink writes for `event`, without the level: for tests.
std::string FormatEvent(const Event& event);

}  // namespace dlipkg

// Hands each core event to several sinks in turn (the log line and the /metrics counters).
// Used by the composition root. Thread-safe as its sinks are; the sinks must outlive it.
#pragma once

#include <vector>

#include "ports/event_sink.hpp"

namespace dlipkg::app {

class FanOutEventSink final : public EventSink {
 public:
  explicit FanOutEventSink(std::vector<EventSink*> sinks) : sinks_(std::move(sinks)) {}
  void Report(const Event& event) override {
    for (EventSink* sink : sinks_)
      if (sink != nullptr) sink->Report(event);
  }

 private:
  std::vector<EventSink*> sinks_;
};

}  // namespace dlipkg::app

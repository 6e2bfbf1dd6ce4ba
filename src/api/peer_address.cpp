#include "api/peer_address.hpp"

#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>

namespace dlipkg::api {

bool IsLoopback(std::string_view host) {
  if (host == "localhost") return true;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (const auto v4 = boost::urls::parse_ipv4_address(host)) return v4->is_loopback();
  if (const auto v6 = boost::urls::parse_ipv6_address(host)) {
    if (v6->is_loopback()) return true;
    return v6->is_v4_mapped() && v6->to_bytes()[12] == 127;
  }
  return false;  // unknown or empty: not trusted
}

}  // namespace dlipkg::api

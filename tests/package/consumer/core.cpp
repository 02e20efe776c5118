// Uses the installed headers of both policies; exits 0 when they agree.
#include <memory>

#include <wsreg/wsreg.hpp>

namespace {

class Null final : public wsreg::Sender {
 public:
  wsreg::SendResult send(const wsreg::Payload&) noexcept override {
    return wsreg::SendResult::sent;
  }
};

template <class Policy>
bool works() {
  wsreg::ConnectionRegistry<Policy> registry;
  const wsreg::ConnectionId id = registry.add(std::make_shared<Null>());
  registry.broadcast(wsreg::Payload::text("hello"));
  registry.remove(id);
  return id == 1 && registry.size() == 0 && registry.stats().messages_sent == 1;
}

}  // namespace

int main() { return works<wsreg::ActorPolicy>() && works<wsreg::MutexPolicy>() ? 0 : 1; }

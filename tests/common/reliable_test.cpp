// The reliable channel: outbox durability, acknowledged delivery, resend after the receiver
// restarts, duplicates dropped, out-of-order records refused, exactly-once in effect.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "trading_heal/common/relay.hpp"
#include "trading_heal/common/reliable.hpp"

namespace trading_heal::common {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class Reliable : public ::testing::Test {
 protected:
  fs::path dir_ = fs::path(::testing::TempDir()) / ("th-rel-" + random_boot_id());
  void SetUp() override { fs::create_directories(dir_); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string outbox_path() const { return (dir_ / "events.outbox").string(); }
  std::string endpoint() const { return "ipc://" + (dir_ / "events.sock").string(); }
  static proto::Event event(int i) {
    proto::Event e;
    e.action = "restart";
    e.agent = "BTC_USDT";
    e.fields["i"] = std::int64_t{i};
    return e;
  }
};

TEST_F(Reliable, OutboxKeepsPendingAcrossReopenAndForgetsAcknowledged) {
  FakeClock clock;
  Stamper st("actuator", clock);
  {
    auto box = Outbox::open(outbox_path());
    ASSERT_TRUE(box) << box.error();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*box)->append(st.stamp(event(i))));
    EXPECT_EQ((*box)->ack("actuator", st.boot_id(), 2), 2u);
  }
  auto box = Outbox::open(outbox_path());
  ASSERT_TRUE(box) << box.error();
  ASSERT_EQ((*box)->pending().size(), 3u);
  EXPECT_EQ((*box)->pending().front().env.seq, 3u);
  EXPECT_EQ((*box)->max_seq(), 5u);
  EXPECT_EQ((*box)->ack("actuator", st.boot_id(), 5), 3u);
  EXPECT_EQ(fs::file_size(outbox_path()), 0u);  // nothing pending: truncated
}

TEST_F(Reliable, OutboxCutsATornLastRecord) {
  FakeClock clock;
  Stamper st("diagnoser", clock);
  {
    auto box = Outbox::open(outbox_path());
    ASSERT_TRUE(box);
    ASSERT_TRUE((*box)->append(st.stamp(event(1))));
    ASSERT_TRUE((*box)->append(st.stamp(event(2))));
  }
  const auto full = fs::file_size(outbox_path());
  fs::resize_file(outbox_path(), full - 5);  // power loss mid-write
  auto box = Outbox::open(outbox_path());
  ASSERT_TRUE(box);
  EXPECT_EQ((*box)->pending().size(), 1u);
  EXPECT_NE((*box)->recovered_note().find("torn"), std::string::npos);
  ASSERT_TRUE((*box)->append(st.stamp(event(3))));
  auto again = Outbox::open(outbox_path());
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->pending().size(), 2u);
  EXPECT_TRUE((*again)->recovered_note().empty());
}

TEST(SeqTrackerTest, DuplicatesOutOfOrderGapsAndPersistence) {
  SeqTracker t;
  using V = SeqTracker::Verdict;
  EXPECT_EQ(t.classify("a", "b1", 1, false), V::kNew);
  t.record("a", "b1", 1);
  EXPECT_EQ(t.classify("a", "b1", 1, false), V::kDuplicate);
  EXPECT_EQ(t.classify("a", "b1", 3, false), V::kOutOfOrder);
  EXPECT_EQ(t.classify("a", "b1", 2, false), V::kNew);
  t.record("a", "b1", 2);
  // A boot not seen yet starts at 1: seq 5 overtook lost ones, unless the sender holds
  // nothing earlier (its earlier records were acknowledged to a receiver that lost its state).
  EXPECT_EQ(t.classify("a", "b2", 5, false), V::kOutOfOrder);
  EXPECT_EQ(t.classify("a", "b2", 5, true), V::kNew);
  t.record("a", "b2", 5);
  EXPECT_EQ(t.gaps(), 4u);
  EXPECT_EQ(t.classify("a", "b2", 5, true), V::kDuplicate);  // the mark never overrides that
  EXPECT_EQ(t.classify("a", "b2", 8, false), V::kOutOfOrder);
  EXPECT_EQ(t.classify("a", "b2", 8, true), V::kNew);
  auto back = SeqTracker::from_json(t.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->classify("a", "b1", 2, false), V::kDuplicate);
  EXPECT_EQ(back->classify("a", "b2", 6, false), V::kNew);
  EXPECT_EQ(back->gaps(), 4u);
  EXPECT_FALSE(SeqTracker::from_json("{nope"));
  for (int i = 0; i < 40; ++i) back->record("a", "boot" + std::to_string(i), 1);
  EXPECT_LE(back->size(), SeqTracker::kBootsPerSource);
}

// Runs `step` until `done`. Between steps it waits for input on any of `sockets` (zmq_poll);
// when none comes for kQuiet the channel is quiet and `idle` runs (the tests move their fake
// clock on to the next resend). Time passes in the clock, not in sleeps. False: still not done
// after kMaxQuiet quiet rounds.
constexpr auto kQuiet = 50ms;
constexpr int kMaxQuiet = 400;
bool drive(const std::vector<zmq::socket_t*>& sockets, const std::function<void()>& step,
           const std::function<void()>& idle, const std::function<bool()>& done) {
  std::vector<zmq::pollitem_t> items;
  for (auto* s : sockets) items.push_back({s->handle(), 0, ZMQ_POLLIN, 0});
  for (int quiet = 0; quiet < kMaxQuiet;) {
    step();
    if (done()) return true;
    if (zmq::poll(items, kQuiet) == 0) {
      idle();
      ++quiet;
    }
  }
  return false;
}

// Moves `clock` on to `next` (a sender's next resend), at most 10 s at a time.
void advance_to(FakeClock& clock, MonoTime next) {
  if (next > clock.mono()) clock.advance(std::min<MonoTime::duration>(next - clock.mono(), 10s));
}

// Pumps sender and receiver until `done`; every record the receiver gives goes to `take`.
void pump(ReliableSender& s, ReliableReceiver& r, FakeClock& clock,
          const std::function<void(const ReliableReceiver::Delivery&)>& take,
          const std::function<bool()>& done) {
  ASSERT_TRUE(drive(
      {&s.socket(), &r.socket()},
      [&] {
        s.on_readable(clock.mono());
        (void)s.on_tick(clock.mono());
        while (auto d = r.receive()) take(*d);
      },
      [&] { advance_to(clock, s.on_tick(clock.mono())); }, done));
}

// The same, the receiver accepting every record into `got`.
void pump(ReliableSender& s, ReliableReceiver& r, FakeClock& clock,
          std::vector<proto::Message>& got, const std::function<bool()>& done) {
  pump(
      s, r, clock,
      [&](const ReliableReceiver::Delivery& d) {
        got.push_back(d.msg);
        r.accept(d);
      },
      done);
}

// Sources are what senders say: ten thousand invented ones keep the tracker bounded, and the
// real, recent ones stay remembered (their resends are still duplicates).
TEST(SeqTrackerTest, InventedSourcesAreBounded) {
  SeqTracker t;
  t.record("probe", "boot-a", 5);
  for (int i = 0; i < 10000; ++i) t.record("liar" + std::to_string(i), "x", 1);
  EXPECT_LE(t.size(), SeqTracker::kMaxEntries);
  t.record("actuator", "boot-b", 3);
  EXPECT_EQ(t.classify("actuator", "boot-b", 3, false), SeqTracker::Verdict::kDuplicate);
  EXPECT_EQ(t.classify("liar9999", "x", 1, false), SeqTracker::Verdict::kDuplicate);
}

TEST_F(Reliable, DeliversExactlyOnceAcrossReceiverAndSenderRestarts) {
  zmq::context_t ctx;
  FakeClock clock;
  SeqTracker tracker;
  std::vector<proto::Message> got;
  constexpr int kFirst = 300;
  {
    auto box = Outbox::open(outbox_path());
    ASSERT_TRUE(box);
    Stamper st("actuator", clock);
    ReliableSender sender(ctx, endpoint(), **box, st, 50ms);
    auto receiver = std::make_unique<ReliableReceiver>(ctx, endpoint(), tracker, proto::Limits{},
                                                       0666, nullptr, clock);
    const auto now = clock.mono();
    for (int i = 0; i < kFirst; ++i) ASSERT_TRUE(sender.send(event(i), now));
    // The receiver dies after taking a third of them; what was in flight is lost.
    pump(sender, *receiver, clock, got, [&] { return got.size() >= kFirst / 3; });
    receiver.reset();
    for (int i = kFirst; i < kFirst + 50; ++i) ASSERT_TRUE(sender.send(event(i), now));
    receiver = std::make_unique<ReliableReceiver>(ctx, endpoint(), tracker, proto::Limits{}, 0666,
                                                  nullptr, clock);
    pump(sender, *receiver, clock, got, [&] { return sender.pending() == 0; });
    // The sender dies with records pending; a new sender process resends them from disk.
    for (int i = kFirst + 50; i < kFirst + 60; ++i) ASSERT_TRUE(sender.send(event(i), now));
    receiver.reset();
  }
  {
    auto box = Outbox::open(outbox_path());
    ASSERT_TRUE(box);
    EXPECT_EQ((*box)->pending().size(), 10u);
    Stamper st("actuator", clock);
    ReliableSender sender(ctx, endpoint(), **box, st, 50ms);
    ReliableReceiver receiver(ctx, endpoint(), tracker, proto::Limits{}, 0666, nullptr, clock);
    ASSERT_TRUE(sender.send(event(kFirst + 60), clock.mono()));
    pump(sender, receiver, clock, got, [&] { return sender.pending() == 0; });
  }
  std::multiset<std::int64_t> ids;
  for (const auto& m : got) {
    ids.insert(std::get<std::int64_t>(std::get<proto::Event>(m.body).fields.at("i")));
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kFirst + 61));
  for (int i = 0; i < kFirst + 61; ++i) EXPECT_EQ(ids.count(i), 1u) << "event " << i;
  EXPECT_EQ(tracker.gaps(), 0u);
}

// The fault-matrix case: the receiver has never seen this sender boot and its first record is
// lost in flight (a DEALER reconnecting to a restarted exporter drops what it had queued).
// Seq 2 must not be taken as the start of the boot, or seq 1 would later look like a duplicate.
TEST_F(Reliable, FirstRecordOfANewBootLostInFlightIsStillDeliveredInOrder) {
  zmq::context_t ctx;
  FakeClock clock;
  SeqTracker tracker;
  auto box = Outbox::open(outbox_path());
  ASSERT_TRUE(box);
  Stamper st("actuator", clock);
  ReliableSender sender(ctx, endpoint(), **box, st, 5s);  // only a refusal makes it resend
  ReliableReceiver receiver(ctx, endpoint(), tracker, proto::Limits{}, 0666, nullptr, clock);
  const auto now = clock.mono();
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(sender.send(event(i), now));
  std::vector<std::uint64_t> seqs;
  bool lost_one = false;
  pump(
      sender, receiver, clock,
      [&](const ReliableReceiver::Delivery& d) {
        if (!lost_one) {  // seq 1 vanishes: neither stored nor answered
          EXPECT_EQ(d.msg.env.seq, 1u);
          EXPECT_TRUE(d.msg.env.first_held);
          lost_one = true;
          return;
        }
        seqs.push_back(d.msg.env.seq);
        receiver.accept(d);
      },
      [&] { return sender.pending() == 0; });
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_GE(receiver.out_of_order(), 1u);
  EXPECT_EQ(tracker.gaps(), 0u);
}

// The receiver's state is lost (a new data directory) after it acknowledged seqs 1..4 of a
// boot: the sender holds only 5..7 and marks 5 as its first held, so delivery resumes there
// instead of waiting forever for records nobody holds.
TEST_F(Reliable, ReceiverThatLostItsStateResumesAtTheOldestHeldRecord) {
  zmq::context_t ctx;
  FakeClock clock;
  auto box = Outbox::open(outbox_path());
  ASSERT_TRUE(box);
  Stamper st("diagnoser", clock);
  ReliableSender sender(ctx, endpoint(), **box, st, 50ms);
  std::vector<proto::Message> got;
  {
    SeqTracker first;
    ReliableReceiver receiver(ctx, endpoint(), first, proto::Limits{}, 0666, nullptr, clock);
    for (int i = 1; i <= 4; ++i) ASSERT_TRUE(sender.send(event(i), clock.mono()));
    pump(sender, receiver, clock, got, [&] { return sender.pending() == 0; });
  }
  for (int i = 5; i <= 7; ++i) ASSERT_TRUE(sender.send(event(i), clock.mono()));
  SeqTracker fresh;
  ReliableReceiver receiver(ctx, endpoint(), fresh, proto::Limits{}, 0666, nullptr, clock);
  pump(sender, receiver, clock, got, [&] { return sender.pending() == 0; });
  ASSERT_EQ(got.size(), 7u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].env.seq, i + 1);
  EXPECT_EQ(fresh.gaps(), 4u);  // from this receiver's point of view
}

TEST_F(Reliable, RefusedRecordsStayPendingUntilAccepted) {
  zmq::context_t ctx;
  FakeClock clock;
  SeqTracker tracker;
  auto box = Outbox::open(outbox_path());
  ASSERT_TRUE(box);
  Stamper st("diagnoser", clock);
  ReliableSender sender(ctx, endpoint(), **box, st, 30ms);
  ReliableReceiver receiver(ctx, endpoint(), tracker, proto::Limits{}, 0666, nullptr, clock);
  ASSERT_TRUE(sender.send(event(1), clock.mono()));
  int refused = 0;
  std::vector<proto::Message> got;
  pump(
      sender, receiver, clock,
      [&](const ReliableReceiver::Delivery& d) {
        if (refused < 2) {
          ++refused;
          receiver.refuse(d, "disk full");
        } else {
          got.push_back(d.msg);
          receiver.accept(d);
        }
      },
      [&] { return sender.pending() == 0; });
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(Reliable, GarbageOnTheReceiverIsCountedAndIgnored) {
  zmq::context_t ctx;
  SeqTracker tracker;
  ReliableReceiver receiver(ctx, endpoint(), tracker);
  auto rogue = make_socket(ctx, zmq::socket_type::dealer);
  ASSERT_TRUE(connect_endpoint(rogue, endpoint()));
  rogue.send(zmq::str_buffer("\x92\x01"), zmq::send_flags::none);
  rogue.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  rogue.send(zmq::str_buffer("b"), zmq::send_flags::none);
  ASSERT_TRUE(drive(
      {&receiver.socket()}, [&] { (void)receiver.receive(); }, [] {},
      [&] { return receiver.rejects().total() == 2; }));
  EXPECT_EQ(receiver.rejects().count(proto::Reject::kMalformed), 2u);
}

// Many hosts: the actuator's records reach the centre through the probe's relay unchanged (the
// actuator's source, boot id and seq), exactly once and in order, though the centre is away for
// a while (they wait in the relay's outbox) and the relay's first acknowledgements are lost.
TEST_F(Reliable, ARelayForwardsRecordsUnchangedExactlyOnceWhileTheCentreComesAndGoes) {
  zmq::context_t ctx;
  FakeClock clock;
  auto actuator_box = Outbox::open(outbox_path());
  auto relay_box = Outbox::open((dir_ / "relay.outbox").string());
  ASSERT_TRUE(actuator_box && relay_box);
  const std::string relay_ep = "ipc://" + (dir_ / "relay.sock").string();
  const std::string centre_ep = "ipc://" + (dir_ / "centre.sock").string();
  Stamper actuator_st("actuator", clock);
  Stamper probe_st("probe", clock);
  ReliableSender actuator(ctx, relay_ep, **actuator_box, actuator_st, 50ms);
  ReliableSender upstream(ctx, centre_ep, **relay_box, probe_st, 50ms);
  RecordRelay relay(ctx, relay_ep, upstream);
  SeqTracker centre_seqs;
  auto centre = std::make_unique<ReliableReceiver>(ctx, centre_ep, centre_seqs, proto::Limits{},
                                                   0666, nullptr, clock);
  centre->scope_by_host("centre");
  std::vector<proto::Message> got;
  auto pump_all = [&](const std::function<bool()>& done) {
    std::vector<zmq::socket_t*> sockets{&actuator.socket(), &relay.socket(), &upstream.socket()};
    if (centre) sockets.push_back(&centre->socket());
    return drive(
        sockets,
        [&] {
          const auto now = clock.mono();
          actuator.on_readable(now);
          (void)actuator.on_tick(now);
          relay.on_readable(now);
          upstream.on_readable(now);
          (void)upstream.on_tick(now);
          if (centre) {
            while (auto d = centre->receive()) {
              got.push_back(d->msg);
              centre->accept(*d);
            }
          }
        },
        [&] {
          const auto now = clock.mono();
          advance_to(clock, std::min(actuator.on_tick(now), upstream.on_tick(now)));
        },
        done);
  };
  const auto now = clock.mono();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(actuator.send(event(i), now));
  ASSERT_TRUE(pump_all([&] { return got.size() >= 30; }));
  centre.reset();  // the centre goes away: the host keeps taking records
  for (int i = 100; i < 150; ++i) ASSERT_TRUE(actuator.send(event(i), now));
  ASSERT_TRUE(pump_all([&] { return actuator.pending() == 0; })) << "the relay took them all";
  EXPECT_GT(upstream.pending(), 0u) << "they wait on the host's disk";
  centre = std::make_unique<ReliableReceiver>(ctx, centre_ep, centre_seqs, proto::Limits{}, 0666,
                                              nullptr, clock);
  centre->scope_by_host("centre");
  ASSERT_TRUE(pump_all([&] { return upstream.pending() == 0; }));
  ASSERT_EQ(got.size(), 150u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].env.source, "actuator");
    EXPECT_EQ(got[i].env.boot_id, actuator_st.boot_id());
    EXPECT_EQ(got[i].env.seq, i + 1) << "in order, exactly once";
  }
  EXPECT_EQ(relay.relayed(), 150u);
}

// Senders of other hosts are tracked apart: two hosts' actuators never share an entry, so many
// hosts cannot push each other's boots out of the tracker.
TEST(ReliableReceiverScope, OtherHostsSendersAreTrackedUnderTheirHost) {
  zmq::context_t ctx;
  SeqTracker t;
  ReliableReceiver r(ctx, "inproc://scope", t);
  EXPECT_EQ(r.tracker_source("actuator", "host:alpha"), "actuator") << "not scoped yet";
  r.scope_by_host("centre");
  EXPECT_EQ(r.tracker_source("actuator", "host:alpha"), "alpha/actuator");
  EXPECT_EQ(r.tracker_source("actuator", "host:centre"), "actuator");
  EXPECT_EQ(r.tracker_source("actuator", "998"), "actuator") << "a local peer";
}

}  // namespace
}  // namespace trading_heal::common

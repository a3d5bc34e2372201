#include "examples.hpp"

#include "convoy/actors/orchestration.hpp"
#include "convoy/actors/saga.hpp"

namespace convoy::examples {

/// A saga: book a flight, a hotel and a car; when a booking fails, undo the ones that
/// succeeded in reverse order and report what each compensation did.
orchestration<json> book_trip(context& ctx, json trip) {
  saga bookings(ctx);
  std::vector<std::string> booked;
  call_options no_retry_when_sold_out;
  no_retry_when_sold_out.retry.non_retryable = {"unavailable"};
  std::optional<activity_error> failure; // C++ forbids co_await inside a catch handler
  try {
    auto flight = co_await ctx.call<std::string>("book-flight", trip, no_retry_when_sold_out);
    bookings.add_compensation("cancel-booking", flight);
    booked.push_back(flight);
    auto hotel = co_await ctx.call<std::string>("book-hotel", trip, no_retry_when_sold_out);
    bookings.add_compensation("cancel-booking", hotel);
    booked.push_back(hotel);
    auto car = co_await ctx.call<std::string>("book-car", trip, no_retry_when_sold_out);
    bookings.add_compensation("cancel-booking", car);
    booked.push_back(car);
  } catch (const activity_error& e) {
    failure = e;
  }
  if (failure) {
    auto undone = co_await bookings.compensate();
    co_return json{{"status", "rolled-back"}, {"failed", failure->activity()},
                   {"reason", failure->reason()}, {"compensations", undone}};
  }
  co_return json{{"status", "booked"}, {"bookings", booked}};
}

activity_result book(const std::string& what, const activity_context& actx, const json& trip) {
  if (trip.value("unavailable", std::string{}) == what)
    return activity_result::failure("no " + what + " available", "unavailable");
  return activity_result::success(what + ":" + actx.idempotency_key);
}

void register_saga(registry& reg) {
  reg.add_orchestration("trip", 1, &book_trip);
  reg.add_activity("book-flight", [](const activity_context& a, const json& t) { return book("flight", a, t); });
  reg.add_activity("book-hotel", [](const activity_context& a, const json& t) { return book("hotel", a, t); });
  reg.add_activity("book-car", [](const activity_context& a, const json& t) { return book("car", a, t); });
  reg.add_activity("cancel-booking", [](const activity_context&, const json& ref) {
    return activity_result::success("cancelled " + ref.get<std::string>());
  });
}

} // namespace convoy::examples

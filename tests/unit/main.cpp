#define BOOST_TEST_MODULE convoy unit tests
#include <boost/test/unit_test.hpp>

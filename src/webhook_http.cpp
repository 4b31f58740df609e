/* libcurl multi transfers and the backoff policy; see webhook_http.hpp. No PostgreSQL here. */
#include "webhook_http.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <random>
#include <stdexcept>

namespace querator::http {

namespace {

struct EasyDeleter
{
	void operator()(CURL *easy) const { curl_easy_cleanup(easy); }
};
struct SlistDeleter
{
	void operator()(curl_slist *list) const { curl_slist_free_all(list); }
};

/* The response body is not kept: its status says everything. */
size_t
discard_body(char *, size_t size, size_t count, void *)
{
	return size * count;
}

void
check(CURLcode code, const char *what)
{
	if (code != CURLE_OK)
		throw std::runtime_error(std::string("webhook: ") + what + ": " + curl_easy_strerror(code));
}

void
check(CURLMcode code, const char *what)
{
	if (code != CURLM_OK)
		throw std::runtime_error(std::string("webhook: ") + what + ": " + curl_multi_strerror(code));
}

} // namespace

void
global_init()
{
	static std::once_flag once;
	std::call_once(once, [] { check(curl_global_init(CURL_GLOBAL_DEFAULT), "curl_global_init"); });
}

/* One POST: the easy handle and everything it points to, alive until the transfer is removed. */
struct Client::Transfer
{
	Request request;
	std::unique_ptr<CURL, EasyDeleter> easy;
	std::unique_ptr<curl_slist, SlistDeleter> headers;
	CURLM *multi = nullptr; /* set once added */
	char error[CURL_ERROR_SIZE] = {};

	~Transfer()
	{
		if (multi != nullptr && easy)
			curl_multi_remove_handle(multi, easy.get());
	}
};

void
Client::MultiDeleter::operator()(void *multi) const
{
	curl_multi_cleanup(static_cast<CURLM *>(multi));
}

Client::Client(std::string user_agent) : user_agent_(std::move(user_agent))
{
	global_init();
	multi_.reset(curl_multi_init());
	if (!multi_)
		throw std::runtime_error("webhook: curl_multi_init failed");
}

Client::~Client()
{
	transfers_.clear(); /* removes every easy handle before the multi handle goes */
}

void
Client::start(Request request)
{
	auto t = std::make_unique<Transfer>();
	t->request = std::move(request);
	t->easy.reset(curl_easy_init());
	if (!t->easy)
		throw std::runtime_error("webhook: curl_easy_init failed");
	CURL *e = t->easy.get();
	const Request &r = t->request;

	/* A request header list: the caller's, minus what curl must not be told twice. */
	auto append = [&](const std::string &line) {
		curl_slist *head = curl_slist_append(t->headers.get(), line.c_str());
		if (head == nullptr)
			throw std::runtime_error("webhook: out of memory");
		if (!t->headers)
			t->headers.reset(head); /* later appends keep the head */
	};
	for (const Header &h : r.headers)
		append(h.name + ": " + h.value);
	append("Expect:"); /* no 100-continue round trip for larger bodies */

	check(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L), "NOSIGNAL");
	check(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"), "PROTOCOLS_STR");
	check(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"), "REDIR_PROTOCOLS_STR");
	check(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L), "FOLLOWLOCATION");
	check(curl_easy_setopt(e, CURLOPT_URL, r.url.c_str()), "URL");
	check(curl_easy_setopt(e, CURLOPT_POST, 1L), "POST");
	check(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size())), "POSTFIELDSIZE");
	check(curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.data()), "POSTFIELDS");
	check(curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers.get()), "HTTPHEADER");
	check(curl_easy_setopt(e, CURLOPT_USERAGENT, user_agent_.c_str()), "USERAGENT");
	check(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, std::max(1L, r.timeout_ms)), "TIMEOUT_MS");
	check(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body), "WRITEFUNCTION");
	check(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error), "ERRORBUFFER");
	check(curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void *>(t.get())), "PRIVATE");

	CURLM *multi = static_cast<CURLM *>(multi_.get());
	check(curl_multi_add_handle(multi, e), "curl_multi_add_handle");
	t->multi = multi;
	transfers_.emplace(e, std::move(t));
}

std::vector<Response>
Client::drive()
{
	CURLM *multi = static_cast<CURLM *>(multi_.get());
	int running = 0;
	check(curl_multi_perform(multi, &running), "curl_multi_perform");
	std::vector<Response> done;
	int left = 0;
	while (CURLMsg *msg = curl_multi_info_read(multi, &left))
	{
		if (msg->msg != CURLMSG_DONE)
			continue;
		auto found = transfers_.find(msg->easy_handle);
		if (found == transfers_.end())
			continue;
		Transfer &t = *found->second;
		Response response;
		response.tag = t.request.tag;
		curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &response.status);
		CURLcode result = msg->data.result;
		if (result != CURLE_OK)
			response.error = t.error[0] != '\0' ? std::string(t.error) : std::string(curl_easy_strerror(result));
		else if (response.status < 200 || response.status > 299)
			response.error = "HTTP " + std::to_string(response.status);
		done.push_back(std::move(response));
		transfers_.erase(found); /* removes the handle from the multi handle */
	}
	return done;
}

void
Client::wait(int timeout_ms)
{
	if (transfers_.empty())
		return;
	int ready = 0;
	check(curl_multi_poll(static_cast<CURLM *>(multi_.get()), nullptr, 0, std::max(0, timeout_ms), &ready),
		  "curl_multi_poll");
}

int64_t
backoff_delay_us(int64_t base_us, int64_t max_us, int attempt)
{
	int64_t delay = std::max<int64_t>(base_us, 1);
	for (int i = 1; i < attempt && delay < max_us; i++)
		delay = delay > max_us / 2 ? max_us : delay * 2;
	delay = std::min(delay, max_us);
	static std::mt19937_64 random{std::random_device{}()};
	std::uniform_real_distribution<double> factor(0.8, 1.0);
	return static_cast<int64_t>(static_cast<double>(delay) * factor(random));
}

std::string
header_safe(const std::string &value)
{
	std::string out = value;
	for (char &c : out)
		if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
			c = ' ';
	return out;
}

} // namespace querator::http

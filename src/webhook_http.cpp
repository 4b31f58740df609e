/* libcurl multi transfers and the backoff policy; see webhook_http.hpp. No PostgreSQL here. */
#include "webhook_http.hpp"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>
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
struct UrlDeleter
{
	void operator()(CURLU *url) const { curl_url_cleanup(url); }
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

/* The text of a URL part, or nothing when the URL has no such part. */
std::optional<std::string>
url_part(CURLU *url, CURLUPart which)
{
	char *text = nullptr;
	if (curl_url_get(url, which, &text, 0) != CURLUE_OK || text == nullptr)
		return std::nullopt;
	std::string copy(text);
	curl_free(text);
	return copy;
}

/* Whether the url's host is an IP address: curl then looks nothing up (it still calls the resolver start hook). */
bool
host_is_address(const std::string &url)
{
	std::unique_ptr<CURLU, UrlDeleter> parsed(curl_url());
	if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
		return false;
	std::optional<std::string> host = url_part(parsed.get(), CURLUPART_HOST);
	if (!host)
		return false;
	if (host->size() > 2 && host->front() == '[' && host->back() == ']')
		*host = host->substr(1, host->size() - 2);
	unsigned char address[16];
	return inet_pton(AF_INET, host->c_str(), address) == 1 || inet_pton(AF_INET6, host->c_str(), address) == 1;
}

/* curl_multi_init opens a socket pair that wakes curl_multi_poll; it lives as long as the multi handle. */
constexpr size_t kMultiDescriptors = 2;
/*
 * A name lookup runs in a thread of curl's threaded resolver: a socket pair
 * tells the transfer when it is done, and getaddrinfo opens a file of /etc or
 * a DNS socket meanwhile (3 seen at once; 4 leaves room for a second DNS socket).
 */
constexpr size_t kLookupDescriptors = 4;

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
	std::shared_ptr<const AddressPolicy> policy;
	Client *client = nullptr;
	std::string refusal;      /* why the policy refused an address of this transfer */
	bool allowed_seen = false; /* some address was allowed: a failure is then curl's */
	bool refused_final = false; /* the connection in use was refused (a reused one) */
	bool looking_up = false;    /* a name lookup may be running (counted in resolving_) */
	bool host_is_address = false;

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

Client::Client(std::string user_agent, DescriptorBudget &budget) : user_agent_(std::move(user_agent)), budget_(budget)
{
	global_init();
	/* The multi handle's socket pair: a fixed two for the client's life, so never refused. */
	for (; reserved_ < kMultiDescriptors; reserved_++)
		budget_.reserve();
	multi_.reset(curl_multi_init());
	if (!multi_)
	{
		for (; reserved_ > 0; reserved_--)
			budget_.release();
		throw std::runtime_error("webhook: curl_multi_init failed");
	}
}

Client::~Client()
{
	/* Out of the map first: removing a handle may close its connection, and the close hook counts transfers_. */
	std::map<void *, std::unique_ptr<Transfer>> ending;
	ending.swap(transfers_);
	ending.clear();     /* removes every easy handle before the multi handle goes */
	multi_.reset();     /* closes the connections it kept */
	for (; reserved_ > 0; reserved_--)
		budget_.release();
}

/*
 * What curl may hold open with `transfers` in flight: the multi handle's pair,
 * a socket per transfer or per open connection (idle kept-alive ones too,
 * whichever is more: limit_connections keeps connections to the transfers'
 * number, so an idle one is closed before a new one opens), two during a
 * happy-eyeballs connect (counted as sockets_), and the name lookups.
 */
size_t
Client::descriptors_needed(size_t transfers) const
{
	return kMultiDescriptors + std::max(transfers, sockets_) + kLookupDescriptors * resolving_;
}

/*
 * Holds exactly what is needed now: more before curl opens something (never
 * refused: the transfer is under way; make_room admitted it), less after it
 * closed something. Called from curl's callbacks too.
 */
void
Client::settle_reservations()
{
	const size_t needed = descriptors_needed(transfers_.size() + room_);
	for (; reserved_ < needed; reserved_++)
		budget_.reserve();
	for (; reserved_ > needed; reserved_--)
		budget_.release();
}

/*
 * At most one connection per transfer in flight: curl closes the oldest idle
 * connection before it opens one past this, rather than keeping it, so idle
 * connections never hold descriptors that a new transfer was admitted with.
 * Never inside a curl callback (no curl call may be made there).
 */
void
Client::limit_connections()
{
	long most = static_cast<long>(std::max<size_t>(1, transfers_.size()));
	check(curl_multi_setopt(static_cast<CURLM *>(multi_.get()), CURLMOPT_MAX_TOTAL_CONNECTIONS, most),
		  "MAX_TOTAL_CONNECTIONS");
}

/* curl closes a lookup's socket pair before it connects, or when the transfer ends. */
void
Client::lookup_ended(Transfer &transfer)
{
	if (!transfer.looking_up)
		return;
	transfer.looking_up = false;
	resolving_--;
}

size_t
Client::make_room(size_t new_transfers)
{
	room_ = 0;
	while (room_ < new_transfers)
	{
		const size_t needed = descriptors_needed(transfers_.size() + room_ + 1);
		while (reserved_ < needed && budget_.try_reserve())
			reserved_++;
		if (reserved_ < needed)
			break;
		room_++;
	}
	settle_reservations(); /* gives back a partial reservation, or what an earlier room held */
	return room_;
}

void
Client::start(Request request)
{
	/* A url stored before the rule (an upgraded 0.1.0 queue) is refused here as the API refuses it. */
	if (std::string problem = url_problem(request.url); !problem.empty())
	{
		refused_.push_back(Response{request.tag, 0, std::move(problem)});
		return;
	}
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

	/*
	 * The destination policy sees the resolved address of every connection
	 * curl opens (so DNS answers, rebinding included, cannot route around
	 * it), and before each request the address of the connection in use (a
	 * reused one too, after the policy changed). A proxy from the
	 * environment would hide the real destination: none is used.
	 */
	t->policy = policy_;
	t->client = this;
	t->host_is_address = host_is_address(r.url);
	curl_opensocket_callback open_socket = [](void *data, curlsocktype, curl_sockaddr *address) -> curl_socket_t {
		Transfer *transfer = static_cast<Transfer *>(data);
		Client &client = *transfer->client;
		client.lookup_ended(*transfer);
		bool refused = true;
		try
		{
			std::string refusal = transfer->policy->refusal(&address->addr);
			refused = !refusal.empty();
			if (refused)
				transfer->refusal = std::move(refusal);
		}
		catch (...)
		{
			/* no exception may unwind through curl: refused */
		}
		if (refused)
		{
			client.settle_reservations();
			return CURL_SOCKET_BAD;
		}
		transfer->allowed_seen = true;
		client.sockets_++;
		client.settle_reservations(); /* reserved before it exists */
		curl_socket_t fd = socket(address->family, address->socktype, address->protocol);
		if (fd == CURL_SOCKET_BAD)
		{
			client.sockets_--;
			client.settle_reservations();
		}
		return fd;
	};
	/* Called for every socket the open hook made, also after the transfer that opened it is gone. */
	curl_closesocket_callback close_socket = [](void *data, curl_socket_t fd) -> int {
		Client &client = *static_cast<Client *>(data);
		int result = close(fd);
		if (client.sockets_ > 0)
			client.sockets_--;
		client.settle_reservations();
		return result;
	};
	/* Before a name lookup (not for a name in curl's DNS cache). */
	curl_resolver_start_callback lookup_starts = [](void *, void *, void *data) -> int {
		Transfer *transfer = static_cast<Transfer *>(data);
		if (!transfer->looking_up && !transfer->host_is_address)
		{
			transfer->looking_up = true;
			transfer->client->resolving_++;
			transfer->client->settle_reservations();
		}
		return 0;
	};
	curl_prereq_callback before_request = [](void *data, char *primary_ip, char *, int, int) -> int {
		Transfer *transfer = static_cast<Transfer *>(data);
		try
		{
			std::string refusal = transfer->policy->refusal(std::string(primary_ip));
			if (refusal.empty())
				return CURL_PREREQFUNC_OK;
			transfer->refusal = std::move(refusal);
		}
		catch (...)
		{
		}
		transfer->refused_final = true;
		return CURL_PREREQFUNC_ABORT;
	};
	check(curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket), "OPENSOCKETFUNCTION");
	check(curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, static_cast<void *>(t.get())), "OPENSOCKETDATA");
	check(curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket), "CLOSESOCKETFUNCTION");
	check(curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, static_cast<void *>(this)), "CLOSESOCKETDATA");
	check(curl_easy_setopt(e, CURLOPT_RESOLVER_START_FUNCTION, lookup_starts), "RESOLVER_START_FUNCTION");
	check(curl_easy_setopt(e, CURLOPT_RESOLVER_START_DATA, static_cast<void *>(t.get())), "RESOLVER_START_DATA");
	check(curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, before_request), "PREREQFUNCTION");
	check(curl_easy_setopt(e, CURLOPT_PREREQDATA, static_cast<void *>(t.get())), "PREREQDATA");
	check(curl_easy_setopt(e, CURLOPT_PROXY, ""), "PROXY");

	CURLM *multi = static_cast<CURLM *>(multi_.get());
	check(curl_multi_add_handle(multi, e), "curl_multi_add_handle");
	t->multi = multi;
	transfers_.emplace(e, std::move(t));
	if (room_ > 0)
		room_--; /* its descriptor was reserved by make_room */
	settle_reservations();
	limit_connections();
}

std::vector<Response>
Client::drive()
{
	CURLM *multi = static_cast<CURLM *>(multi_.get());
	int running = 0;
	check(curl_multi_perform(multi, &running), "curl_multi_perform");
	std::vector<Response> done = std::move(refused_);
	refused_.clear();
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
		if (result != CURLE_OK && !t.refusal.empty() && (t.refused_final || !t.allowed_seen))
			response.error = t.refusal;
		else if (result != CURLE_OK)
			response.error = t.error[0] != '\0' ? std::string(t.error) : std::string(curl_easy_strerror(result));
		else if (response.status < 200 || response.status > 299)
			response.error = "HTTP " + std::to_string(response.status);
		done.push_back(std::move(response));
		lookup_ended(t);
		/* Out of the map before the handle is removed: that may close a connection (the close hook counts). */
		std::unique_ptr<Transfer> ended = std::move(found->second);
		transfers_.erase(found);
		ended.reset();
	}
	settle_reservations();
	limit_connections();
	return done;
}

void
Client::wait(int timeout_ms)
{
	if (transfers_.empty() || !refused_.empty())
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

std::string
url_problem(const std::string &url)
{
	const std::string invalid = "webhook url is invalid; ";
	if (url.size() > 2048)
		return invalid + "cannot be greater than 2048 characters";
	for (unsigned char c : url)
		if (c <= 0x20 || c == 0x7f)
			return invalid + "cannot contain whitespace or control characters";
	if (strncasecmp(url.c_str(), "http://", 7) != 0 && strncasecmp(url.c_str(), "https://", 8) != 0)
		return invalid + "must start with http:// or https://";
	std::unique_ptr<CURLU, UrlDeleter> parsed(curl_url());
	if (!parsed)
		throw std::bad_alloc();
	CURLUcode code = curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0);
	if (code != CURLUE_OK)
		return invalid + "cannot be parsed (" + curl_url_strerror(code) + ")";
	auto part = [&](CURLUPart which) { return url_part(parsed.get(), which); };
	if (part(CURLUPART_USER) || part(CURLUPART_PASSWORD) || part(CURLUPART_OPTIONS))
		return invalid + "cannot contain a user name or password (user:password@); send credentials in webhook_headers";
	std::optional<std::string> host = part(CURLUPART_HOST);
	if (!host || host->empty())
		return invalid + "must name a host";
	return "";
}

std::string
header_problem(const std::string &name, const std::string &value)
{
	static const char *const reserved[] = {
		"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade",
		"TE", "Trailer", "Expect", "Proxy-Authorization", "Proxy-Connection",
	};
	const std::string shown = header_safe(name);
	if (name.empty() || name.size() > 256 ||
		name.find_first_not_of("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") !=
			std::string::npos)
		return "header name '" + shown + "' must be 1 to 256 letters, digits or !#$%&'*+-.^_`|~";
	for (const char *r : reserved)
		if (strcasecmp(name.c_str(), r) == 0)
			return "header '" + shown + "' cannot be set: querator and curl set it from the url and the request";
	for (unsigned char c : value)
		if (c < 0x20 || c == 0x7f)
			return "the value of header '" + shown + "' cannot contain control characters (CR, LF, ...)";
	/* curl drops a header whose value is empty or blank: it would not replace the one it names. */
	if (value.find_first_not_of(' ') == std::string::npos)
		return "the value of header '" + shown + "' cannot be empty";
	return "";
}

} // namespace querator::http

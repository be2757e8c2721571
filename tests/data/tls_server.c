/*
 * An HTTPS server linked with OpenSSL's static libraries (libssl.a, libcrypto.a): no libssl.so
 * in its maps, SSL_read and SSL_write among its own symbols. One connection at a time,
 * keep-alive; each request (a head, no body) is answered "TARGET\n" with a Content-Length.
 * Usage: tls_server CERT KEY; says "listening on 127.0.0.1:PORT".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void serve(SSL *ssl)
{
	char buf[16384], target[4096], answer[8192];
	int have = 0;

	for (;;) {
		char *end = memmem(buf, have, "\r\n\r\n", 4);

		if (!end) {
			int n = SSL_read(ssl, buf + have, sizeof(buf) - have);

			if (n <= 0)
				return;
			have += n;
			continue;
		}
		int head = end + 4 - buf;

		if (sscanf(buf, "%*s %4095s", target) != 1)
			return;
		int body = strlen(target) + 1;
		int len = snprintf(answer, sizeof(answer),
				   "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s\n", body, target);

		if (SSL_write(ssl, answer, len) != len)
			return;
		memmove(buf, buf + head, have - head);
		have -= head;
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (argc != 3 || !ctx || SSL_CTX_use_certificate_file(ctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 64) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
		perror("listen");
		return 1;
	}
	printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		SSL *ssl;

		if (fd < 0)
			continue;
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1)
			serve(ssl);
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
}

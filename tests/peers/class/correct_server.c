/*
 * Correct, for contrast: a C TCP server a grader should find no flaw in.
 * - A child process per connection; SIGCHLD is ignored, so the kernel reaps them (no zombies).
 * - Each piece is answered as it arrives (a client that never half-closes, like the lecture's,
 *   gets its reply), and send() loops until everything is written; MSG_NOSIGNAL, so a client
 *   that leaves early cannot kill it with SIGPIPE. It closes when the client has finished.
 * - Text: full Unicode uppercasing of UTF-8 with ICU (ucasemap_utf8ToUpper: ß becomes SS, ΐ
 *   three characters); bytes that are not UTF-8 pass through unchanged (ICU copies ill-formed
 *   sequences); a character split between two reads is held back until its end arrives.
 * - SO_REUSEADDR, so it can be restarted at once.
 * Build: gcc -Wall -o correct_server correct_server.c -licuuc   (Debian: apt-get install libicu-dev)
 * Usage: ./correct_server [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unicode/ucasemap.h>

#define CHUNK 4096

/* Length of a multibyte character cut off at the end of buf[0..len): a lead byte followed by
 * fewer continuation bytes than it announces, each one allowed there. 0 if the end is whole. */
static size_t unfinished_tail(const unsigned char *buf, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = buf[len - back];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: the lead is further back */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        if (need <= back)
            return 0;
        if (back >= 2) {
            unsigned char second = buf[len - back + 1];
            unsigned char low = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
            unsigned char high = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
            if (second < low || second > high)
                return 0;
        }
        return back;
    }
    return 0;
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, MSG_NOSIGNAL);
        if (sent <= 0)
            return -1;
        data += sent;
        len -= (size_t)sent;
    }
    return 0;
}

/* Uppercases text[0..len) and sends it; -1 if the client is gone or ICU failed. */
static int send_upper(int fd, UCaseMap *map, const char *text, size_t len)
{
    if (len == 0)
        return 0;
    size_t capacity = 3 * len + 16; /* enough for every character's uppercase in UTF-8 */
    char *upper = malloc(capacity);
    if (upper == NULL)
        return -1;
    UErrorCode status = U_ZERO_ERROR;
    int32_t written = ucasemap_utf8ToUpper(map, upper, (int32_t)capacity, text, (int32_t)len, &status);
    int result = U_FAILURE(status) ? -1 : send_all(fd, upper, (size_t)written);
    if (U_FAILURE(status))
        fprintf(stderr, "ucasemap_utf8ToUpper: %s\n", u_errorName(status));
    free(upper);
    return result;
}

static void serve(int fd)
{
    UErrorCode status = U_ZERO_ERROR;
    UCaseMap *map = ucasemap_open("", 0, &status);
    if (U_FAILURE(status)) {
        fprintf(stderr, "ucasemap_open: %s\n", u_errorName(status));
        close(fd);
        return;
    }
    unsigned char buf[CHUNK + 3];
    size_t held = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + held, CHUNK, 0);
        if (n <= 0) {
            send_upper(fd, map, (const char *)buf, held); /* an unfinished character, as it is */
            break;
        }
        size_t len = held + (size_t)n;
        held = unfinished_tail(buf, len);
        if (send_upper(fd, map, (const char *)buf, len - held) < 0)
            break;
        memmove(buf, buf + len - held, held);
    }
    ucasemap_close(map);
    close(fd);
}

int main(int argc, char *argv[])
{
    int port = argc > 1 ? atoi(argv[1]) : 12000;
    signal(SIGCHLD, SIG_IGN);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 128) < 0) {
        perror("cannot listen");
        return 1;
    }
    printf("The server is ready to receive\n");
    fflush(stdout);

    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0)
            continue;
        pid_t child = fork();
        if (child == 0) {
            close(listener);
            serve(conn);
            _exit(0);
        }
        if (child < 0)
            perror("fork");
        close(conn);
    }
}

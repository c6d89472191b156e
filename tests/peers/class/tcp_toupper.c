/*
 * Flaw: ASCII only. Each byte goes through toupper(), which knows single bytes in the C locale:
 * "straße привет" comes back "STRAßE привет". A grader should report "ASCII only" with the advice
 * for C (toupper is per byte; decode UTF-8, e.g. with ICU's u_strToUpper, or reject what it
 * cannot uppercase). Everything else is sound: a child process per connection (SIGCHLD ignored,
 * so they are reaped), each piece answered as it arrives, write loops until all is sent,
 * SO_REUSEADDR, closes when the client has finished.
 * Build: gcc -Wall -o tcp_toupper tcp_toupper.c
 * Usage: ./tcp_toupper [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int send_all(int fd, const char *data, ssize_t len)
{
    while (len > 0) {
        ssize_t sent = send(fd, data, len, 0);
        if (sent <= 0)
            return -1;
        data += sent;
        len -= sent;
    }
    return 0;
}

static void serve(int conn)
{
    char buf[4096];
    ssize_t n;
    while ((n = recv(conn, buf, sizeof buf, 0)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            buf[i] = toupper((unsigned char)buf[i]);
        if (send_all(conn, buf, n) < 0)
            break;
    }
    close(conn);
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
        perror("bind");
        return 1;
    }
    printf("The server is ready to receive\n");
    fflush(stdout);

    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0)
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(listener);
            serve(conn);
            _exit(0);
        }
        close(conn);
    }
}

/*
 * Flaw: accept() is called once in the program's life, before the loop, so only the first
 * connection is ever served. Later clients connect (the kernel completes the handshake into the
 * listen backlog) but nobody reads them: they wait for a reply forever. After the first client
 * leaves, read() returns 0 and the loop sleeps a second and reads again, forever (its author
 * added the sleep when the loop held a core at 100%), so the first connection is never closed
 * either. A grader should report: serves only its first connection ("no reply" to every later
 * one, though connects succeed), and never closes it. Also, as C students write it: toupper per
 * byte (ASCII only), no SO_REUSEADDR.
 * Build: gcc -Wall -o tcp_accept_once tcp_accept_once.c
 * Usage: ./tcp_accept_once [PORT]   (default 12000)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    int port = argc > 1 ? atoi(argv[1]) : 12000;
    int sockfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in servaddr;
    bzero(&servaddr, sizeof(servaddr));
    servaddr.sin_family = AF_INET;
    servaddr.sin_addr.s_addr = inet_addr("127.0.0.1");
    servaddr.sin_port = htons(port);
    if (bind(sockfd, (struct sockaddr *)&servaddr, sizeof(servaddr)) != 0) {
        printf("socket bind failed...\n");
        exit(1);
    }
    if (listen(sockfd, 5) != 0) {
        printf("listen failed...\n");
        exit(1);
    }
    printf("The server is ready to receive\n");

    struct sockaddr_in cli;
    socklen_t len = sizeof(cli);
    int connfd = accept(sockfd, (struct sockaddr *)&cli, &len);

    char buff[1024];
    for (;;) {
        int n = read(connfd, buff, sizeof(buff));
        if (n <= 0) {
            sleep(1);
            continue;
        }
        for (int i = 0; i < n; i++)
            buff[i] = toupper(buff[i]);
        write(connfd, buff, n);
    }
}

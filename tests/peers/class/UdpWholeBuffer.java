/*
 * Flaw: the reply is made from the whole receive buffer. new String(packet.getData(), ...) reads
 * all 1,024 bytes of the array, not the packet's length, and the array is reused for every
 * request: a reply is the uppercased message, then the stale tail of an earlier, longer request,
 * then NUL characters up to 1,024 bytes. A grader should report "whole buffer sent: stale bytes
 * of an earlier request and NUL padding, buffer of 1,024 bytes" (the fix: new String(data, 0,
 * packet.getLength(), UTF_8)). Also: a datagram longer than 1,024 bytes is cut. Text is decoded
 * and encoded as UTF-8 and toUpperCase() is full Unicode, so ß becomes SS.
 * Build: javac UdpWholeBuffer.java
 * Usage: java UdpWholeBuffer [PORT]   (default 12000)
 */
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;

public class UdpWholeBuffer {
    public static void main(String[] args) throws Exception {
        int port = args.length > 0 ? Integer.parseInt(args[0]) : 12000;
        DatagramSocket serverSocket = new DatagramSocket(port, InetAddress.getByName("127.0.0.1"));
        byte[] receiveData = new byte[1024];
        System.out.println("The server is ready to receive");

        while (true) {
            DatagramPacket receivePacket = new DatagramPacket(receiveData, receiveData.length);
            serverSocket.receive(receivePacket);
            String sentence = new String(receivePacket.getData(), StandardCharsets.UTF_8);
            String capitalized = sentence.toUpperCase();
            byte[] sendData = capitalized.getBytes(StandardCharsets.UTF_8);
            DatagramPacket sendPacket = new DatagramPacket(sendData, sendData.length,
                    receivePacket.getAddress(), receivePacket.getPort());
            serverSocket.send(sendPacket);
        }
    }
}

// Message is what the application gets: a push, or one frame of a
// request's answer.

const text = new TextDecoder();

export class Message {
  constructor(f) {
    /** The push id (a request's id for a response); "" when the producer gave none. */
    this.id = f.id;
    /** "high" or "low" (responses: "high"). */
    this.priority = f.priority;
    /** The content type the producer or backend gave, or "". */
    this.contentType = f.contentType;
    /** The payload, byte for byte as published. */
    this.payload = f.payload;
    /** Whether the producer asked for a receipt (Push-Ack: received). */
    this.wantsReceipt = f.wantsReceipt;
  }

  /** The payload as UTF-8 text. */
  text() {
    return text.decode(this.payload);
  }

  /** The payload parsed as JSON. */
  json() {
    return JSON.parse(this.text());
  }
}

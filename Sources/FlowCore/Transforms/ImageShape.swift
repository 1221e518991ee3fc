/// The shape `[C, H, W]` of the part of a row an image transform acts on: C channel planes of H × W pixels, stored
/// channel-major (row element c·H·W + y·W + x), the layout of PyTorch's `[batch, C, H, W]` tensors flattened per image.
///
/// In a multi-scale flow the active part is a prefix of the row: after a factor-out (RealNVP §3.6) the last channels
/// of a level go straight to the latent and later transforms act on the first channels only, passing the rest
/// through unchanged.
public struct ImageShape: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Channels C.
    public var channels: Int
    /// Height H (pixels).
    public var height: Int
    /// Width W (pixels).
    public var width: Int

    /// A shape of `channels` × `height` × `width`.
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// Pixels per channel plane H·W.
    @inlinable public var pixels: Int { height * width }
    /// Values C·H·W.
    @inlinable public var count: Int { channels * height * width }
    /// The shape after a 2×2 squeeze: `[4C, H/2, W/2]`.
    public var squeezed: ImageShape { ImageShape(channels: 4 * channels, height: height / 2, width: width / 2) }
    /// The first `channels` channels of this shape (what stays active after a factor-out).
    public func keeping(channels c: Int) -> ImageShape { ImageShape(channels: c, height: height, width: width) }
    /// "4×14×14".
    public var description: String { "\(channels)×\(height)×\(width)" }
}

//! Kernel parameters, defined once in Rust.
//!
//! [`wgsl_params!`](crate::wgsl_params) declares a `#[repr(C)]` struct of 4-byte scalars and
//! derives its WGSL declaration from the same tokens, so the host layout and the shader
//! layout cannot drift apart. The runtime prepends that declaration to the kernel source.

/// A parameter block: plain old data whose WGSL declaration is `struct Params { ... }`.
pub trait WgslParams: bytemuck::Pod {
    /// The WGSL declaration of this struct, named `Params`.
    const WGSL: &'static str;
}

/// Field types a parameter block may use: 4-byte scalars, so the layout has no padding.
pub trait Scalar {}
impl Scalar for u32 {}
impl Scalar for i32 {}
impl Scalar for f32 {}

/// Declares a kernel parameter struct and its WGSL twin.
///
/// ```
/// seqbridge_gpu::wgsl_params! {
///     /// Example.
///     pub struct AddParams { pub n: u32, pub alpha: f32 }
/// }
/// use seqbridge_gpu::WgslParams;
/// assert!(AddParams::WGSL.contains("alpha: f32"));
/// ```
#[macro_export]
macro_rules! wgsl_params {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $fvis:vis $field:ident : $ty:ident),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        $vis struct $name { $($(#[$fm])* $fvis $field: $ty),* }

        // SAFETY: repr(C) with only 4-byte scalar fields (checked below): no padding, every bit
        // pattern valid.
        unsafe impl $crate::bytemuck::Zeroable for $name {}
        unsafe impl $crate::bytemuck::Pod for $name {}

        const _: () = {
            const fn scalar<T: $crate::params::Scalar>() {}
            $(scalar::<$ty>();)*
        };

        impl $crate::WgslParams for $name {
            const WGSL: &'static str = concat!(
                "struct Params {\n",
                $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)*
                "}\n"
            );
        }
    };
}

#[cfg(test)]
mod tests {
    use super::WgslParams;

    crate::wgsl_params! {
        struct Mixed { a: u32, b: f32, c: i32, d: u32, e: f32 }
    }

    /// The generated WGSL struct has the Rust struct's layout: same members, offsets and size.
    #[test]
    fn generated_wgsl_matches_rust_layout() {
        let module = naga::front::wgsl::parse_str(Mixed::WGSL).expect("generated WGSL parses");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("Params"))
            .expect("struct Params");
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("Params is not a struct");
        };
        let rust = [
            ("a", std::mem::offset_of!(Mixed, a)),
            ("b", std::mem::offset_of!(Mixed, b)),
            ("c", std::mem::offset_of!(Mixed, c)),
            ("d", std::mem::offset_of!(Mixed, d)),
            ("e", std::mem::offset_of!(Mixed, e)),
        ];
        assert_eq!(members.len(), rust.len());
        for (m, (name, off)) in members.iter().zip(rust) {
            assert_eq!(m.name.as_deref(), Some(name));
            assert_eq!(m.offset as usize, off, "offset of {name}");
        }
        assert_eq!(*span as usize, std::mem::size_of::<Mixed>());
    }
}
